// `make demo`: the pod-admission showcase on a local control plane. DEMO_ONCE=1 exits after it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { generateCertificateFiles } from "../../src/certs/files.js";
import { applyObjects, parseManifests } from "../../src/kube/apply.js";
import { KubeRequestError, kubeRequest } from "../../src/kube/request.js";
import type { Pod } from "../../src/pods/pod.js";
import { repoRoot, toolPath } from "./binaries.js";
import { preflight } from "./node/tools.js";
import { startControlPlane } from "./controlPlane.js";
import { installAppSnapshotsCrds, installVeleroCrds } from "./crds.js";
import { until } from "./wait.js";
import { applyPodMutatingWebhook, applyVeleroValidatingWebhook, webhookProcess } from "./webhook.js";

const say = (line = "") => console.log(line);
const step = (line: string) => console.log(`\x1b[1m==> ${line}\x1b[0m`);
const examples = (name: string) => parseManifests(readFileSync(path.join(repoRoot, "examples", name), "utf8"), `examples/${name}`);

step("starting a local control plane (etcd + kube-apiserver on 127.0.0.1)");
const plane = await startControlPlane({ log: (line) => say(`    ${line}`) });
const kc = plane.kubeConfig;
let webhook: Awaited<ReturnType<typeof webhookProcess>> | undefined;
const shutdown = async (code: number) => {
  await webhook?.dispose();
  await plane.stop();
  process.exit(code);
};
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  step("installing the Velero CRDs and app-snapshots' SnapshotPolicy CRDs");
  await installVeleroCrds(kc);
  await installAppSnapshotsCrds(kc);

  step("generating development certificates into certs/");
  const files = generateCertificateFiles({ dir: path.join(repoRoot, "certs"), dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 30 });
  say(`    ${files.reusedCa ? "kept" : "wrote"} ${path.relative(repoRoot, files.caCert)}; wrote ${path.relative(repoRoot, files.cert)} and ${path.relative(repoRoot, files.key)} (0600)`);

  step("starting the webhook: app-snapshots webhook --tls-cert certs/tls.crt --tls-key certs/tls.key");
  webhook = await webhookProcess({
    kubeconfigPath: plane.kubeconfigPath,
    namespace: "app-snapshots",
    tls: { certFile: files.cert, keyFile: files.key, caPem: readFileSync(files.caCert, "utf8") },
  });
  await webhook.start();
  say(`    serving ${webhook.url}/mutate/pods; health and metrics on ${webhook.healthUrl}`);
  await applyPodMutatingWebhook(kc, {
    name: "app-snapshots",
    url: `${webhook.url}/mutate/pods`,
    caPem: webhook.caPem,
    namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "kube-public", "kube-node-lease", "app-snapshots"] }] },
  });
  say("    MutatingWebhookConfiguration app-snapshots: pods CREATE, failurePolicy Ignore, reinvocationPolicy IfNeeded");

  step("applying examples/policies.yaml");
  const policies = examples("policies.yaml");
  await applyObjects(kc, policies);
  for (const p of policies) say(`    ${p.kind} ${p.metadata?.namespace ? `${p.metadata.namespace}/` : ""}${p.metadata?.name}`);

  const pods = examples("pods.yaml") as Pod[];
  // Both policies match postgres-0; it gets the namespaced one only once the webhook has seen every policy.
  await until("the webhook to see the policies", async () => {
    const res = await kubeRequest(kc, "POST", "/api/v1/namespaces/shop/pods?dryRun=All", { ...pods[0], metadata: { ...pods[0]!.metadata, name: "canary" } });
    const warnings = res.warnings.join(" ");
    return (res.body as Pod).metadata?.annotations?.["appsnapshots.io/policy"] === "shop/databases" && warnings.includes("cluster/nightly-pvcs") ? true : undefined;
  });

  step("creating the pods of examples/pods.yaml through the apiserver");
  for (const pod of pods) {
    const created = await kubeRequest(kc, "POST", `/api/v1/namespaces/${pod.metadata!.namespace}/pods`, pod);
    const stored = created.body as Pod;
    const before = pod.metadata?.annotations ?? {};
    const added = Object.entries(stored.metadata?.annotations ?? {}).filter(([k, v]) => before[k] !== v);
    say();
    say(`  pod ${pod.metadata!.namespace}/${pod.metadata!.name}: the webhook added ${added.length} annotation(s)`);
    for (const [k, v] of added) say(`    + ${k}: ${v}`);
    for (const w of created.warnings) say(`    ! ${w}`);
  }

  say();
  step("Velero admission: a ValidatingWebhookConfiguration for velero.io locations, backups, schedules, restores");
  await applyVeleroValidatingWebhook(kc, { name: "app-snapshots-velero", url: `${webhook.url}/validate/velero`, caPem: webhook.caPem });
  await applyObjects(kc, examples("velero.yaml"));
  say("    applied examples/velero.yaml: namespace velero, Velero v1.18.2 Deployment, credentials Secret, BackupStorageLocation default (S3)");
  const lvp = { apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name: "nfs-snapshots", namespace: "velero" }, spec: { provider: "replicated.com/nfs", objectStorage: { bucket: "snapshots" }, config: { path: "/exports/velero" } } };
  say("    creating BackupStorageLocation velero/nfs-snapshots (provider replicated.com/nfs, no server):");
  const rejected = await until("the Velero webhook to answer", async () => {
    try {
      await kubeRequest(kc, "POST", "/apis/velero.io/v1/namespaces/velero/backupstoragelocations?dryRun=All", lvp);
      return undefined;
    } catch (err) {
      return err instanceof KubeRequestError ? err : undefined;
    }
  });
  say(`    rejected (HTTP ${rejected.status}):`);
  for (const part of String((rejected.body as { message?: string }).message).split("; ")) say(`      ${part}`);

  say();
  step("try it yourself");
  const kubectl = `${path.relative(process.cwd(), toolPath("kubectl"))} --kubeconfig ${plane.kubeconfigPath}`;
  say(`    kubeconfig: ${plane.kubeconfigPath}`);
  say(`    ${kubectl} get pod -n shop postgres-0 -o jsonpath='{.metadata.annotations}'`);
  say(`    ${kubectl} get snapshotpolicies,clustersnapshotpolicies -A`);
  say(`    node dist/src/cli.js explain --state examples/policies.yaml -f examples/workloads.yaml`);
  // The demo needs no root; the real node does, and runs our image and chart as shipped.
  const reasons = preflight();
  say(
    reasons.length === 0
      ? "    the real thing on this machine: make cluster (a real node with our image; it prints the helm install line)"
      : `    (make cluster would run a real node with our image and chart; not here: ${reasons.join("; ")})`,
  );
  if (process.env.DEMO_ONCE) {
    await shutdown(0);
  } else {
    say("    (Ctrl-C stops the webhook and the control plane)");
  }
} catch (err) {
  console.error(`demo failed: ${(err as Error).stack ?? String(err)}`);
  if (webhook) console.error(`webhook log: ${webhook.logFile}`);
  await shutdown(1);
}
