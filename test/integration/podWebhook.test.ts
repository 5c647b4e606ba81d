import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { ApiException} from "@kubernetes/client-node";
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCa, issueCertificate } from "../../src/certs/authority.js";
import { listen, type RunningServer } from "../../src/server/http.js";
import { parsePolicy } from "../../src/policy/types.js";
import { toolPath } from "../cluster/binaries.js";
import { applyPodMutatingWebhook, webhookProcess, type WebhookProcess } from "../cluster/webhook.js";
import { until } from "../cluster/wait.js";
import type { Pod } from "../../src/pods/pod.js";

const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const admissionApi = kc.makeApiClient(AdmissionregistrationV1Api);

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const ns = `pods-${run}`;
const configName = `a-app-snapshots-${run}`;
const intruderName = `z-intruder-${run}`;
let webhook: WebhookProcess;
let intruder: RunningServer;

function fixture(name: string, podName: string): V1Pod {
  const pod = parse(readFileSync(`test/fixtures/pods/${name}.yaml`, "utf8")) as Pod;
  pod.metadata = { ...pod.metadata, name: podName, namespace: ns };
  delete pod.metadata.generateName;
  delete pod.metadata.ownerReferences;
  return pod as V1Pod;
}

const policy = (name: string, spec: object) => ({ apiVersion: "appsnapshots.io/v1alpha1", kind: "SnapshotPolicy", metadata: { name, namespace: ns }, spec });

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: ns, labels: { "appsnapshots-test": run } } } });
  webhook = await webhookProcess({ kubeconfigPath: cluster.kubeconfigPath });
  await webhook.start();
  await applyPodMutatingWebhook(kc, {
    name: configName,
    url: `${webhook.url}/mutate/pods`,
    caPem: webhook.caPem,
    namespaceSelector: { matchLabels: { "appsnapshots-test": run } },
  });
  await custom.createNamespacedCustomObject({
    group: "appsnapshots.io",
    version: "v1alpha1",
    namespace: ns,
    plural: "snapshotpolicies",
    body: policy("databases", {
      podSelector: { matchLabels: { app: "postgres" } },
      hooks: { preBackup: { command: ["/bin/sh", "-c", "pg_dump app > /var/lib/postgresql/data/dump.sql"], timeout: "5m" } },
    }),
  });
  // Canary: the configuration and the policy have reached the apiserver and the webhook's informers.
  await until("the webhook to mutate a dry-run pod", async () => {
    const pod = await core.createNamespacedPod({ namespace: ns, dryRun: "All", body: fixture("postgres-statefulset", "canary") });
    return pod.metadata?.annotations?.["appsnapshots.io/policy"];
  });
}, 60_000);

afterAll(async () => {
  for (const name of [configName, intruderName]) await admissionApi.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
  await intruder?.close(100);
  await webhook?.dispose();
});

describe("pod admission through the real kube-apiserver", () => {
  it("writes the volume and hook annotations into a created pod", async () => {
    await core.createNamespacedPod({ namespace: ns, body: fixture("postgres-statefulset", "postgres-0") });
    const stored = await core.readNamespacedPod({ namespace: ns, name: "postgres-0" });
    expect(stored.metadata?.annotations).toEqual({
      "backup.velero.io/backup-volumes": "data,scratch",
      "pre.hook.backup.velero.io/container": "postgres",
      "pre.hook.backup.velero.io/command": '["/bin/sh","-c","pg_dump app > /var/lib/postgresql/data/dump.sql"]',
      "pre.hook.backup.velero.io/on-error": "Fail",
      "pre.hook.backup.velero.io/timeout": "5m",
      "appsnapshots.io/policy": `${ns}/databases`,
      "appsnapshots.io/managed": "backup-volumes,pre-backup",
    });
    // Nothing else about the pod changed.
    expect(stored.spec?.volumes?.map((v) => v.name)).toEqual(["data", "scratch", "config", "kube-api-access-x7k2p"]);
  });

  it("shows the same mutation on a server-side dry-run create, and stores nothing", async () => {
    const preview = await core.createNamespacedPod({ namespace: ns, dryRun: "All", body: fixture("postgres-statefulset", "preview-0") });
    expect(preview.metadata?.annotations?.["backup.velero.io/backup-volumes"]).toBe("data,scratch");
    expect(preview.metadata?.annotations?.["appsnapshots.io/policy"]).toBe(`${ns}/databases`);
    const error: unknown = await core.readNamespacedPod({ namespace: ns, name: "preview-0" }).catch((err: unknown) => err);
    expect((error as ApiException<unknown>).code).toBe(404);
  });

  it("leaves pods no policy matches unchanged", async () => {
    await core.createNamespacedPod({ namespace: ns, body: fixture("istio-sidecar", "web-1") });
    const stored = await core.readNamespacedPod({ namespace: ns, name: "web-1" });
    expect(Object.keys(stored.metadata?.annotations ?? {})).toEqual(["sidecar.istio.io/status"]);
  });

  it("sends its warnings to the client (kubectl prints them)", () => {
    const manifest = stringify(fixture("handwritten-annotations", "mysql-0"));
    const result = spawnSync(toolPath("kubectl"), ["--kubeconfig", cluster.kubeconfigPath, "create", "-f", "-"], { input: manifest, encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("pod/mysql-0 created");
    expect(result.stderr).toContain("Warning: app-snapshots: pre.hook.backup.velero.io/command has spaces but is not a JSON array");
    expect(result.stderr).toContain("Warning: app-snapshots: post.hook.restore.velero.io/timeout does not exist");
  });

  it("ends with restore-wait first even when a later webhook puts an init container before it", async () => {
    const ca = createCa({ commonName: "intruder-ca", validityDays: 1 });
    const cert = issueCertificate(ca, { commonName: "intruder", ipAddresses: ["127.0.0.1"], usage: "server", validityDays: 1 });
    intruder = await listen({
      port: 0,
      tls: { cert: cert.certPem, key: cert.keyPem },
      handler: (req, res) => {
        let body = "";
        req.on("data", (chunk: Buffer) => (body += chunk.toString()));
        req.on("end", () => {
          const review = JSON.parse(body) as { request: { uid: string; object: Pod } };
          const init = review.request.object.spec?.initContainers ?? [];
          const patch = init.some((c) => c.name === "mesh-init") ? [] : [{ op: "add", path: "/spec/initContainers/0", value: { name: "mesh-init", image: "mesh/init:1" } }];
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              apiVersion: "admission.k8s.io/v1",
              kind: "AdmissionReview",
              response: { uid: review.request.uid, allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") },
            }),
          );
        });
      },
    });
    await applyPodMutatingWebhook(kc, {
      name: intruderName,
      url: `${intruder.url}/mutate`,
      caPem: ca.certPem,
      reinvocationPolicy: "Never",
      namespaceSelector: { matchLabels: { "appsnapshots-test": run } },
    });
    const probe = async () => {
      const pod = await core.createNamespacedPod({ namespace: ns, dryRun: "All", body: fixture("restored-restore-wait-not-first", "probe") });
      return pod.spec?.initContainers?.some((c) => c.name === "mesh-init") ? true : undefined;
    };
    await until("the second webhook to be called", probe);

    await core.createNamespacedPod({ namespace: ns, body: fixture("restored-restore-wait-not-first", "restored-0") });
    const stored = await core.readNamespacedPod({ namespace: ns, name: "restored-0" });
    expect(stored.spec?.initContainers?.map((c) => c.name)).toEqual(["restore-wait", "mesh-init", "istio-init"]);
    expect(stored.spec?.initContainers?.[0]?.securityContext?.runAsUser).toBe(1000);
    await admissionApi.deleteMutatingWebhookConfiguration({ name: intruderName });
  });

  it("validates policies with the CRD schema and applies the same defaults as the webhook", async () => {
    const error: unknown = await custom
      .createNamespacedCustomObject({ group: "appsnapshots.io", version: "v1alpha1", namespace: ns, plural: "snapshotpolicies", body: policy("bad", { volumes: { sources: ["hostPath"] } }) })
      .catch((err: unknown) => err);
    expect((error as ApiException<unknown>).code).toBe(422);
    expect(String((error as ApiException<unknown>).body)).toContain("Velero never backs up hostPath, secret, configMap, projected, downwardAPI volumes");

    const badDuration: unknown = await custom
      .createNamespacedCustomObject({ group: "appsnapshots.io", version: "v1alpha1", namespace: ns, plural: "snapshotpolicies", body: policy("bad2", { hooks: { preBackup: { command: ["x"], timeout: "5 minutes" } } }) })
      .catch((err: unknown) => err);
    expect(String((badDuration as ApiException<unknown>).body)).toContain("spec.hooks.preBackup.timeout");

    const input = policy("defaults", { hooks: { preBackup: { command: ["sync"] }, postRestore: { command: ["true"] }, initRestore: { image: "busybox", command: ["true"] } } });
    const stored = (await custom.createNamespacedCustomObject({ group: "appsnapshots.io", version: "v1alpha1", namespace: ns, plural: "snapshotpolicies", dryRun: "All", body: input })) as { spec: unknown };
    expect(stored.spec).toEqual(parsePolicy(input).spec);
  });

  it("refuses volume globs the matcher's bounds do not allow (length, number of *)", async () => {
    for (const include of [["*a*a*a*a*a*a*a*a*a*b"], ["x".repeat(129)]]) {
      const error: unknown = await custom
        .createNamespacedCustomObject({ group: "appsnapshots.io", version: "v1alpha1", namespace: ns, plural: "snapshotpolicies", dryRun: "All", body: policy("globs", { volumes: { include } }) })
        .catch((err: unknown) => err);
      expect((error as ApiException<unknown>).code).toBe(422);
      expect(String((error as ApiException<unknown>).body)).toContain("spec.volumes.include[0]");
    }
    const ok = policy("globs", { volumes: { include: ["*a*a*a*a*a*a*a*b"] } });
    await custom.createNamespacedCustomObject({ group: "appsnapshots.io", version: "v1alpha1", namespace: ns, plural: "snapshotpolicies", dryRun: "All", body: ok });
  });

  it("inserts examples/policies.yaml's init-restore hook into a restored pod that Pod Security 'restricted' then admits", async () => {
    const restricted = `${ns}-restricted`;
    await core.createNamespace({
      body: { metadata: { name: restricted, labels: { "appsnapshots-test": run, "pod-security.kubernetes.io/enforce": "restricted" } } },
    });
    const examples = readFileSync("examples/policies.yaml", "utf8").split(/^---$/m).map((doc) => parse(doc) as { kind?: string; metadata: { name: string; namespace?: string } });
    const databases = examples.find((o) => o.kind === "SnapshotPolicy" && o.metadata.name === "databases")!;
    await custom.createNamespacedCustomObject({
      group: "appsnapshots.io",
      version: "v1alpha1",
      namespace: restricted,
      plural: "snapshotpolicies",
      body: { ...databases, metadata: { name: "databases", namespace: restricted } },
    });
    const workloads = readFileSync("examples/workloads.yaml", "utf8").split(/^---$/m).map((doc) => parse(doc) as { kind?: string; spec: { template: { metadata: Pod["metadata"]; spec: Pod["spec"] } } });
    const template = workloads.find((o) => o.kind === "StatefulSet")!.spec.template;
    const restoredPod = (name: string): V1Pod =>
      ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: restricted, labels: { ...template.metadata!.labels, "velero.io/backup-name": "nightly", "velero.io/restore-name": "nightly-1" } },
        spec: {
          ...template.spec,
          // restore-wait as Velero v1.18.2 builds it by default (pkg/restore/actions/pod_volume_restore_action.go).
          initContainers: [
            {
              name: "restore-wait",
              image: "velero/velero:v1.18.2",
              command: ["/velero-restore-helper"],
              args: ["0f9c"],
              volumeMounts: [{ name: "data", mountPath: "/restores/data" }],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
            },
          ],
          volumes: [...(template.spec!.volumes ?? []), { name: "data", persistentVolumeClaim: { claimName: "data-postgres-0" } }],
        },
      }) as V1Pod;
    await until("the webhook to apply the restricted namespace's policy", async () => {
      const pod = await core.createNamespacedPod({ namespace: restricted, dryRun: "All", body: restoredPod("canary") });
      return pod.spec?.initContainers?.some((c) => c.name === "clear-stale-pid") ? true : undefined;
    });
    await core.createNamespacedPod({ namespace: restricted, body: restoredPod("postgres-0") });
    const stored = await core.readNamespacedPod({ namespace: restricted, name: "postgres-0" });
    expect(stored.spec?.initContainers?.map((c) => c.name)).toEqual(["restore-wait", "clear-stale-pid"]);
    const hook = stored.spec!.initContainers![1]!;
    expect(hook.volumeMounts).toEqual([{ name: "data", mountPath: "/var/lib/postgresql/data" }]);
    expect(hook.securityContext).toMatchObject({ runAsUser: 999, runAsNonRoot: true, allowPrivilegeEscalation: false });
    expect(Object.keys(stored.metadata?.annotations ?? {}).filter((k) => k.startsWith("init.hook.restore.velero.io/"))).toEqual([]);
    // Without the webhook's hardening the same hook would be refused: Velero's annotation-built container.
    const bare = restoredPod("bare");
    bare.metadata!.labels = { app: "other" };
    bare.spec!.initContainers!.push({ name: "clear-stale-pid", image: "busybox:1.36", command: ["sh", "-c", "true"] });
    const refused: unknown = await core.createNamespacedPod({ namespace: restricted, dryRun: "All", body: bare }).catch((err: unknown) => err);
    expect((refused as ApiException<unknown>).code).toBe(403);
    expect(String((refused as ApiException<unknown>).body)).toContain("restricted");
    await core.deleteNamespace({ name: restricted });
  });

  it("lets pods be created unchanged while the webhook is down (failurePolicy Ignore)", async () => {
    await webhook.stop();
    await core.createNamespacedPod({ namespace: ns, body: fixture("postgres-statefulset", "postgres-down") });
    const stored = await core.readNamespacedPod({ namespace: ns, name: "postgres-down" });
    expect(stored.metadata?.annotations ?? {}).toEqual({});
    const out = execFileSync(toolPath("kubectl"), ["--kubeconfig", cluster.kubeconfigPath, "get", "pod", "-n", ns, "postgres-down", "-o", "name"], { encoding: "utf8" });
    expect(out.trim()).toBe("pod/postgres-down");
  });
});
