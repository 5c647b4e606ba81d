import { mkdirSync } from "node:fs";
import path from "node:path";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { parseManifests } from "../../src/kube/apply.js";
import { kubeRequest } from "../../src/kube/request.js";
import { fakeNodePath, repoRoot, veleroPaths } from "../cluster/binaries.js";
import { installCrds } from "../cluster/crds.js";
import { freePort, startChild, waitForHttp200, type Child } from "../cluster/processes.js";
import { until } from "../cluster/wait.js";
import type { ClientTool } from "../s3/clientTools.js";
import { describeRun, runTool, type RunOptions, type ToolRun } from "../s3/runTool.js";

/** The real Velero, run out of cluster against the test control plane (test/e2e). */

export const VELERO_NAMESPACE = "velero";

/** The velero CLI with the cluster's kubeconfig and Velero's namespace already given. */
export function veleroCli(kubeconfigPath: string): ClientTool {
  return { command: veleroPaths().velero, args: ["--kubeconfig", kubeconfigPath, "--namespace", VELERO_NAMESPACE], env: {} };
}

/** Runs the velero CLI; throws with the command line and output unless it exits 0. */
export async function velero(kubeconfigPath: string, args: string[], options: RunOptions = {}): Promise<ToolRun> {
  const run = await runTool(veleroCli(kubeconfigPath), args, { timeoutMs: 180_000, ...options });
  if (run.code !== 0 || run.timedOut) throw new Error(`velero failed:\n${describeRun(run)}`);
  return run;
}

/** Installs the CRDs exactly as the built Velero's installer renders them (v1 and v2alpha1 kinds). */
export async function installVeleroCrdsFromBinary(kc: KubeConfig, kubeconfigPath: string): Promise<string[]> {
  const run = await velero(kubeconfigPath, ["install", "--crds-only", "--dry-run", "-o", "yaml"]);
  // The installer prints one v1 List.
  const objects = parseManifests(run.stdout, "velero install --crds-only").flatMap((o) => (o.kind === "List" ? ((o as { items?: KubernetesObject[] }).items ?? []) : [o]));
  return installCrds(kc, objects);
}

export interface VeleroServer {
  child: Child;
  metricsUrl: string;
  stop(): Promise<void>;
}

/**
 * `velero server` out of cluster, as its Deployment would run it (kopia uploader, the AWS plugin alone
 * in its plugin folder), with the BSL's credentials file in AWS_SHARED_CREDENTIALS_FILE.
 */
export async function startVeleroServer(options: { kubeconfigPath: string; dir: string; credentialsFile: string; extraArgs?: string[] }): Promise<VeleroServer> {
  const { velero: binary, pluginDir } = veleroPaths();
  const [metricsPort, profilerPort] = [await freePort(), await freePort()];
  const child = startChild(
    "velero server",
    binary,
    [
      "server",
      `--kubeconfig=${options.kubeconfigPath}`,
      `--namespace=${VELERO_NAMESPACE}`,
      `--plugin-dir=${pluginDir}`,
      "--uploader-type=kopia",
      `--metrics-address=127.0.0.1:${metricsPort}`,
      `--profiler-address=127.0.0.1:${profilerPort}`,
      ...(options.extraArgs ?? []),
    ],
    path.join(options.dir, "velero-server.log"),
    // The server's own credentials file lives under HOME's .config; keep it in the temp dir.
    { AWS_SHARED_CREDENTIALS_FILE: options.credentialsFile, HOME: options.dir },
  );
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  await waitForHttp200(child, metricsUrl, 60_000);
  return { child, metricsUrl, stop: () => child.stop(10_000) };
}

export interface StorageProcess {
  readonly s3Url: string;
  readonly publicUrl: string;
  readonly root: string;
  readonly logFile: string;
  pid(): number | undefined;
  start(): Promise<void>;
  /** SIGKILL: a crash, with whatever was in flight. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `app-snapshots storage` with the S3 API on 127.0.0.1 and `--public-url` on localhost (same port): URLs
 * Velero presigns for publicUrl name another Host than the one Velero's server uses.
 */
export async function storageProcess(options: { dir: string; credentialsFile: string; buckets: string[] }): Promise<StorageProcess> {
  const [port, healthPort] = [await freePort(), await freePort()];
  const root = path.join(options.dir, "store");
  mkdirSync(root, { recursive: true });
  const logFile = path.join(options.dir, "storage.log");
  let child: Child | undefined;
  const self: StorageProcess = {
    s3Url: `http://127.0.0.1:${port}`,
    publicUrl: `http://localhost:${port}`,
    root,
    logFile,
    pid: () => child?.process.pid,
    async start() {
      child = startChild(
        "app-snapshots storage",
        process.execPath,
        [
          path.join(repoRoot, "dist", "src", "cli.js"),
          "storage",
          `--root=${root}`,
          `--s3-listen=127.0.0.1:${port}`,
          `--public-url=${self.publicUrl}`,
          `--credentials=${options.credentialsFile}`,
          `--health-listen=127.0.0.1:${healthPort}`,
          "--drain-delay=0",
          ...options.buckets.map((bucket) => `--bucket=${bucket}`),
        ],
        logFile,
      );
      await waitForHttp200(child, `http://127.0.0.1:${healthPort}/readyz`, 20_000);
    },
    async kill() {
      if (!child) return;
      child.process.kill("SIGKILL");
      await child.exited;
      child = undefined;
    },
    async stop() {
      await child?.stop();
      child = undefined;
    },
  };
  return self;
}

export interface FakeNode {
  readonly name: string;
  /** Where exec'd commands run: <execRoot>/<namespace>/<pod>/<container>. */
  readonly execRoot: string;
  /** The kubelet's pods folder: emptyDir volumes are <podsDir>/<uid>/volumes/kubernetes.io~empty-dir/<name>. */
  readonly podsDir: string;
  volumeDir(podUid: string, volume: string): string;
  child: Child;
  stop(): Promise<void>;
}

/** test/cluster/tools/fakenode: a Ready Node that binds, "runs" and execs into pods (see its header). */
export async function startFakeNode(options: { kc: KubeConfig; kubeconfigPath: string; dir: string; name: string }): Promise<FakeNode> {
  const execRoot = path.join(options.dir, "node");
  const podsDir = path.join(options.dir, "kubelet-pods");
  mkdirSync(execRoot, { recursive: true });
  mkdirSync(podsDir, { recursive: true });
  const port = await freePort();
  const child = startChild(
    "fake-node",
    fakeNodePath(),
    [`--kubeconfig=${options.kubeconfigPath}`, `--node-name=${options.name}`, `--listen=127.0.0.1:${port}`, `--root=${execRoot}`, `--pods-dir=${podsDir}`, `--velero=${veleroPaths().velero}`],
    path.join(options.dir, "fake-node.log"),
  );
  await until(
    `node ${options.name} to be Ready`,
    async () => {
      const node = (await kubeRequest(options.kc, "GET", `/api/v1/nodes/${options.name}`)).body as { status?: { conditions?: Array<{ type: string; status: string }> } };
      return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined;
    },
    30_000,
  );
  return {
    name: options.name,
    execRoot,
    podsDir,
    volumeDir: (podUid, volume) => path.join(podsDir, podUid, "volumes", "kubernetes.io~empty-dir", volume),
    child,
    stop: () => child.stop(10_000),
  };
}
