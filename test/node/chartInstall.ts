// The chart on the real node: our image (from `make image`) imported under the chart's default repository and
// tag, and `helm install` with only the storage volume set, as a cluster admin would run it.
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { cacheDir } from "../cluster/binaries.js";
import { until } from "../cluster/wait.js";
import { chartDir, helm, type HelmResult } from "../chart/helm.js";

/**
 * The archive `make image` writes, named for the chart's appVersion (its default image tag);
 * APP_SNAPSHOTS_IMAGE_ARCHIVE names another one under the same reference (e.g. a build without a fix).
 */
export function imageArchive(): string {
  const chosen = process.env.APP_SNAPSHOTS_IMAGE_ARCHIVE;
  if (chosen) return chosen;
  const appVersion = /^appVersion:\s*"?([^"\s]+)"?/m.exec(readFileSync(path.join(chartDir, "Chart.yaml"), "utf8"))?.[1];
  const archive = path.join(cacheDir, "image", `app-snapshots-${appVersion}.oci.tar`);
  if (!existsSync(archive)) throw new Error(`${archive} is missing: run 'make image' (make node-test does)`);
  return archive;
}

export const RELEASE = "app-snapshots";
export const NAMESPACE = "app-snapshots";

/** helm against the real node; a failure throws with helm's output. */
export async function helmOnNode(kubeconfig: string, args: string[], timeoutMs = 240_000): Promise<HelmResult> {
  const result = await helm(args, { kubeconfig, timeoutMs });
  if (result.code !== 0) throw new Error(`helm ${args[0]} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

/**
 * `helm install` of the chart with a hostPath volume on node localhost, as the README gives it (Velero's exclusion
 * label on Helm's release Secrets), waiting until every pod is Ready.
 */
export function installChart(kubeconfig: string, hostPath: string): Promise<HelmResult> {
  return helmOnNode(kubeconfig, [
    "install",
    RELEASE,
    chartDir,
    "--namespace",
    NAMESPACE,
    "--create-namespace",
    "--labels",
    "velero.io/exclude-from-backup=true",
    "--set",
    `storage.volume.hostPath.path=${hostPath}`,
    "--set",
    "storage.volume.hostPath.node=localhost",
    "--wait",
    "--timeout",
    "180s",
  ]);
}

/** The storage's CA bundle: ca.crt of Secret `<release>-storage-tls`, once the webhook's leader has issued it. */
export function storageCaBundle(kc: KubeConfig): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  return until(
    `Secret ${NAMESPACE}/${RELEASE}-storage-tls`,
    async () => {
      const secret = await core.readNamespacedSecret({ name: `${RELEASE}-storage-tls`, namespace: NAMESPACE }).catch(() => undefined);
      const ca = secret?.data?.["ca.crt"];
      return ca ? Buffer.from(ca, "base64").toString() : undefined;
    },
    120_000,
    1_000,
  );
}

/**
 * The certificate host:port serves. With `ca`, only when `ca` verifies it (chain, expiry, and the name: `servername`,
 * or without one the address itself, an IP SAN); without, whatever is served. Undefined when nothing (valid) answers.
 */
export function servedCertificate(host: string, port: number, options: { ca?: string; servername?: string } = {}): Promise<X509Certificate | undefined> {
  return new Promise((resolve) => {
    const verify = options.ca !== undefined;
    const socket = tls.connect({ host, port, ca: options.ca, servername: options.servername, rejectUnauthorized: verify }, () => {
      resolve(new X509Certificate(socket.getPeerCertificate().raw));
      socket.end();
    });
    socket.setTimeout(5_000, () => socket.destroy());
    socket.once("error", () => resolve(undefined));
    socket.once("close", () => resolve(undefined));
  });
}

/** Sum of a Prometheus counter's samples whose labels include every given label="value" pair. */
export function counterSum(exposition: string, name: string, labels: Record<string, string>): number {
  return exposition
    .split("\n")
    .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}
