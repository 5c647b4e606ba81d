// Kyverno as the webhook benchmark's peer (test/bench/webhook.ts): the binary `make bench` builds from the
// Go module proxy (test/bench/peers), run outside a cluster against the benchmark's own kube-apiserver.
// What that takes: its CRDs (from its module), a namespace with its two ConfigMaps, the environment
// variables a Deployment would set (namespace, service account, deployment and pod names), the names of
// the Secrets it keeps its self-signed CA and serving pair in, and --serverIP with the port, so the
// webhook configurations it registers itself point the apiserver at https://127.0.0.1:<port>.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { applyObjects, parseManifests } from "../../src/kube/apply.js";
import { kubeRequest } from "../../src/kube/request.js";
import { cacheDir, pinnedVersions, repoRoot } from "../cluster/binaries.js";
import { freePort, startChild, type Child } from "../cluster/processes.js";
import { until } from "../cluster/wait.js";

const NAMESPACE = "kyverno";
const PEERS = path.join(repoRoot, "test", "bench", "peers");
/** The mutating webhook Kyverno registers for resources, as the apiserver's metrics name it. */
export const KYVERNO_WEBHOOK = /^mutate\.kyverno\.svc/;

/** Kyverno's CRD files, from its module in the Go module cache (downloaded there by the build). */
function kyvernoCrds(): string[] {
  const out = execFileSync("go", ["mod", "download", "-json", `github.com/kyverno/kyverno@${pinnedVersions().KYVERNO}`], { cwd: path.join(PEERS, "kyverno"), encoding: "utf8" });
  const dir = path.join((JSON.parse(out) as { Dir: string }).Dir, "config", "crds");
  return readdirSync(dir).flatMap((group) => readdirSync(path.join(dir, group)).filter((f) => f.endsWith(".yaml")).map((f) => path.join(dir, group, f)));
}

/** Installs what Kyverno needs, starts it with the benchmark's policy, and resolves once its resource webhook is registered. */
export async function startKyverno(kc: KubeConfig, kubeconfigPath: string, logDir: string): Promise<Child> {
  for (const file of kyvernoCrds()) await applyObjects(kc, parseManifests(readFileSync(file, "utf8")));
  await kubeRequest(kc, "POST", "/api/v1/namespaces", { metadata: { name: NAMESPACE } });
  for (const name of ["kyverno", "kyverno-metrics"]) await kubeRequest(kc, "POST", `/api/v1/namespaces/${NAMESPACE}/configmaps`, { metadata: { name } });
  const port = await freePort();
  const env = {
    KYVERNO_NAMESPACE: NAMESPACE,
    KYVERNO_SERVICEACCOUNT_NAME: "kyverno-admission-controller",
    KYVERNO_DEPLOYMENT: "kyverno-admission-controller",
    KYVERNO_POD_NAME: "kyverno-bench",
    KYVERNO_SVC: "kyverno-svc",
    INIT_CONFIG: "kyverno",
    METRICS_CONFIG: "kyverno-metrics",
  };
  const args = [
    `--kubeconfig=${kubeconfigPath}`,
    `--serverIP=127.0.0.1:${port}`,
    `--webhookServerPort=${port}`,
    "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
    "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
    "--disableMetrics",
    "--admissionReports=false",
    "--disableLogColor",
  ];
  const child = startChild("kyverno", path.join(cacheDir, "bin", `kyverno-${pinnedVersions().KYVERNO}`), args, path.join(logDir, "kyverno.log"), env);
  // The policy is admitted through Kyverno's own policy webhook, so it goes in once Kyverno answers.
  const policy = parseManifests(readFileSync(path.join(PEERS, "backup-all-volumes.yaml"), "utf8"));
  await until("kyverno to admit its policy", async () => {
    if (child.process.exitCode !== null) throw new Error(`kyverno exited:\n${child.tail()}`);
    await applyObjects(kc, policy);
    return true;
  }, 120_000, 1_000);
  return child;
}
