import { spawn } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { parseManifests } from "../../src/kube/apply.js";
import { cacheDir, pinnedVersions, repoRoot, toolPath } from "../cluster/binaries.js";

/** The chart under test. */
export const chartDir = path.join(repoRoot, "chart", "app-snapshots");

/**
 * The Kubernetes version the chart is rendered for: the test apiserver's. `helm template` never asks a
 * cluster for it (not even with --dry-run=server), and the harness builds helm without the ldflags that set
 * its built-in default, which is then v1.20.0, below the chart's kubeVersion.
 */
export const kubeVersion = pinnedVersions().KUBERNETES!;

/** helm's cache, config and data homes, so nothing reads or writes the user's ~/.cache, ~/.config or ~/.local. */
const helmHome = path.join(cacheDir, "helm-home");

export interface HelmResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when helm was killed (timeout). */
  code: number | null;
}

export interface HelmOptions {
  /** KUBECONFIG for commands that talk to a cluster; without it helm sees a kubeconfig path that does not exist. */
  kubeconfig?: string;
  /** Killed after this long (default 60 s). */
  timeoutMs?: number;
}

/** At most this many helm processes at once, whoever calls (the test machines have two cores). */
const MAX_CONCURRENT = 3;
let running = 0;
const waiting: Array<() => void> = [];

async function withSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Runs the pinned helm binary (cached by `make tools`) with its homes under .cache/helm-home. */
export function helm(args: string[], options: HelmOptions = {}): Promise<HelmResult> {
  const homes = { HELM_CACHE_HOME: path.join(helmHome, "cache"), HELM_CONFIG_HOME: path.join(helmHome, "config"), HELM_DATA_HOME: path.join(helmHome, "data") };
  for (const dir of Object.values(homes)) mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("HELM_") && name !== "KUBECONFIG"));
  Object.assign(env, homes, { KUBECONFIG: options.kubeconfig ?? path.join(helmHome, "no-cluster.kubeconfig") });
  const binary = toolPath("helm");
  return withSlot(
    () =>
      new Promise<HelmResult>((resolve, reject) => {
        const child = spawn(binary, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
        child.on("error", (err) => {
          clearTimeout(timer);
          reject(err);
        });
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), code });
        });
      }),
  );
}

export interface RenderOptions {
  /** Values files, absolute or relative to the chart (e.g. "ci/nfs-values.yaml"). */
  valuesFiles?: string[];
  /** --set key=value pairs (typed the way helm types them: numbers and booleans become numbers and booleans). */
  set?: Record<string, string>;
  /** Release namespace (default "app-snapshots"). */
  namespace?: string;
  /** Release name (default "app-snapshots"). */
  releaseName?: string;
}

/** The arguments every command that renders the chart shares: values files and --set pairs. */
export function valuesArgs(options: RenderOptions): string[] {
  return [
    ...(options.valuesFiles ?? []).flatMap((file) => ["--values", path.resolve(chartDir, file)]),
    ...Object.entries(options.set ?? {}).flatMap(([key, value]) => ["--set", `${key}=${value}`]),
  ];
}

/**
 * `helm template` of the chart. Without a kubeconfig, `lookup` finds nothing (as on a first install);
 * with one, `--dry-run=server` lets lookup read the cluster (as on an upgrade).
 */
export function helmTemplate(options: RenderOptions & { kubeconfig?: string } = {}): Promise<HelmResult> {
  const args = ["template", options.releaseName ?? "app-snapshots", chartDir, "--namespace", options.namespace ?? "app-snapshots", "--kube-version", kubeVersion];
  if (options.kubeconfig) args.push("--dry-run=server");
  return helm([...args, ...valuesArgs(options)], { kubeconfig: options.kubeconfig });
}

/** The rendered objects; throws with helm's stderr when rendering fails. */
export async function renderChart(options: RenderOptions & { kubeconfig?: string } = {}): Promise<KubernetesObject[]> {
  const result = await helmTemplate(options);
  if (result.code !== 0) throw new Error(`helm template failed (exit ${result.code}):\n${result.stderr}`);
  return parseManifests(result.stdout, "helm template");
}

/** `helm lint --strict` of the chart with these values. */
export function helmLint(options: Pick<RenderOptions, "valuesFiles" | "set"> = {}): Promise<HelmResult> {
  return helm(["lint", chartDir, "--strict", "--kube-version", kubeVersion, ...valuesArgs(options)]);
}

/** The chart's ci/*.yaml values files, relative to the chart. */
export function ciValuesFiles(): string[] {
  return readdirSync(path.join(chartDir, "ci"))
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => `ci/${name}`);
}

/** The object of that kind and name (and namespace, when given), or undefined. */
export function findObject<T extends KubernetesObject = KubernetesObject>(objects: KubernetesObject[], kind: string, name: string, namespace?: string): T | undefined {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name && (namespace === undefined || o.metadata?.namespace === namespace)) as T | undefined;
}

/** Like findObject, but a missing object is an error that lists what was rendered. */
export function getObject<T extends KubernetesObject = KubernetesObject>(objects: KubernetesObject[], kind: string, name: string, namespace?: string): T {
  const found = findObject<T>(objects, kind, name, namespace);
  if (!found) {
    const rendered = objects.map((o) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata?.name}`).join(", ");
    throw new Error(`no ${kind} ${namespace ? `${namespace}/` : ""}${name} among: ${rendered}`);
  }
  return found;
}

/** Every object of a kind. */
export function objectsOfKind<T extends KubernetesObject = KubernetesObject>(objects: KubernetesObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}
