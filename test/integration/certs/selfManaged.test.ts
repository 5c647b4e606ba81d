import { X509Certificate } from "node:crypto";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeRequestError, kubeRequest } from "../../../src/kube/request.js";
import { issuedBy, parseBundle, parseCertificate } from "../../../src/certs/pem.js";
import { applyPodMutatingWebhook, applyVeleroValidatingWebhook, webhookProcess, type WebhookProcess } from "../../cluster/webhook.js";
import { until } from "../../cluster/wait.js";

/**
 * Self-managed webhook certificates against the real apiserver: two webhook replicas share a
 * Secret and a Lease; the leader creates the certificates and patches caBundle into both
 * configurations; with lifetimes of seconds, admission keeps working across several renewals and
 * CA rotations without a restart; leadership moves when the leader stops. The leader also issues the
 * storage's certificate from the same CA and keeps a BackupStorageLocation's caCert equal to the bundle,
 * so a client configured from the location always verifies the storage.
 */
const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
/** The webhook's own namespace (Secret, Lease): its pods are never mutated, so workloads live in `apps`. */
const ns = `certs-${run}`;
const apps = `certs-apps-${run}`;
const secretName = "webhook-tls";
const mutating = `certs-pods-${run}`;
const validating = `certs-velero-${run}`;
const replicas: WebhookProcess[] = [];
const storageSecretName = "storage-tls";
const location = "backups";

interface Secret {
  data?: Record<string, string>;
  metadata: { resourceVersion: string; labels?: Record<string, string> };
}
interface Configuration {
  webhooks: Array<{ clientConfig: { caBundle?: string } }>;
}

const secretPath = `/api/v1/namespaces/${ns}/secrets/${secretName}`;
const readSecret = async () => (await kubeRequest(kc, "GET", secretPath)).body as Secret;
const readStorageSecret = async () => (await kubeRequest(kc, "GET", `/api/v1/namespaces/${ns}/secrets/${storageSecretName}`)).body as Secret;
const locationPath = `/apis/velero.io/v1/namespaces/${ns}/backupstoragelocations/${location}`;
const locationCaCert = async () => Buffer.from(((await kubeRequest(kc, "GET", locationPath)).body as { spec: { objectStorage: { caCert?: string } } }).spec.objectStorage.caCert ?? "", "base64").toString();
/** Whether `leafPem` chains to one of the CAs of a PEM bundle (what a TLS client with that caCert checks). */
const verifiesWith = (leafPem: string, bundle: string) => parseBundle(bundle).some((ca) => issuedBy(parseCertificate(leafPem), ca));
const decoded = (secret: Secret, key: string) => Buffer.from(secret.data?.[key] ?? "", "base64").toString();
const caBundleOf = async (kind: "mutating" | "validating", name: string) =>
  Buffer.from(((await kubeRequest(kc, "GET", `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${name}`)).body as Configuration).webhooks[0]!.clientConfig.caBundle ?? "", "base64").toString();

const pod = (name: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: apps, labels: { app: "postgres" } },
  spec: { containers: [{ name: "postgres", image: "postgres:17", volumeMounts: [{ name: "data", mountPath: "/var/lib/postgresql/data" }] }], volumes: [{ name: "data", emptyDir: {} }] },
});
/** A dry-run pod create; resolves to the policy annotation the webhook adds (undefined: not mutated). */
const admitPod = async (name: string) =>
  ((await kubeRequest(kc, "POST", `/api/v1/namespaces/${apps}/pods?dryRun=All`, pod(name))).body as { metadata: { annotations?: Record<string, string> } }).metadata.annotations?.["appsnapshots.io/policy"];
/** A dry-run Backup the Velero webhook must reject with its own message (a TLS failure would give another error). */
const rejectBackup = async (name: string) => {
  try {
    await kubeRequest(kc, "POST", `/apis/velero.io/v1/namespaces/${apps}/backups?dryRun=All`, { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name }, spec: { storageLocation: "nope" } });
    return "accepted";
  } catch (err) {
    return err instanceof KubeRequestError ? err.message : String(err);
  }
};

/** The apiserver's own count of webhook calls that failed and were let through (failurePolicy Ignore). */
async function failOpenCount(): Promise<number> {
  const text = (await kubeRequest(kc, "GET", "/metrics")).body as string;
  return [...text.matchAll(/^apiserver_admission_webhook_fail_open_count\{[^}]*name="pods\.appsnapshots\.io"[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

async function metric(replica: WebhookProcess, name: string): Promise<number> {
  const text = await (await fetch(`${replica.healthUrl}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce((sum, m) => sum + Number(m[1]), 0);
}

const selfManagedArgs = (lifetimes: { cert: string; ca: string }) => [
  `--tls-secret=${secretName}`,
  "--cert-ip=127.0.0.1",
  "--cert-dns=localhost",
  `--lease=${secretName}-leader`,
  "--lease-duration=3s",
  `--mutating-webhook-configuration=${mutating}`,
  `--validating-webhook-configuration=${validating}`,
  `--cert-lifetime=${lifetimes.cert}`,
  `--ca-lifetime=${lifetimes.ca}`,
  "--ca-publish-delay=1s",
  // The storage's certificate comes from the same CA; the location's caCert follows the bundle.
  `--storage-tls-secret=${storageSecretName}`,
  "--storage-cert-ip=127.0.0.1",
  "--storage-cert-dns=localhost",
  `--storage-cert-lifetime=${lifetimes.cert}`,
  `--storage-backup-location=${ns}/${location}`,
];

beforeAll(async () => {
  await kubeRequest(kc, "POST", "/api/v1/namespaces", { metadata: { name: ns } });
  await kubeRequest(kc, "POST", "/api/v1/namespaces", { metadata: { name: apps, labels: { "appsnapshots-test": run } } });
  await kubeRequest(kc, "POST", `/apis/appsnapshots.io/v1alpha1/namespaces/${apps}/snapshotpolicies`, {
    apiVersion: "appsnapshots.io/v1alpha1",
    kind: "SnapshotPolicy",
    metadata: { name: "databases", namespace: apps },
    spec: { podSelector: { matchLabels: { app: "postgres" } }, hooks: { preBackup: { command: ["/bin/sh", "-c", "sync"] } } },
  });
  // The location the NOTES print, applied without caCert: the leader adds it.
  await kubeRequest(kc, "POST", `/apis/velero.io/v1/namespaces/${ns}/backupstoragelocations`, {
    apiVersion: "velero.io/v1",
    kind: "BackupStorageLocation",
    metadata: { name: location, namespace: ns },
    spec: { provider: "velero.io/aws", objectStorage: { bucket: "velero" }, config: { region: "us-east-1", s3ForcePathStyle: "true", s3Url: "https://localhost:9000" } },
  });
  // Two replicas, one at a time started so the first certainly leads; lifetimes of seconds.
  for (const name of ["a", "b"]) {
    const replica = await webhookProcess({
      kubeconfigPath: cluster.kubeconfigPath,
      namespace: ns,
      tls: "self-managed",
      extraArgs: selfManagedArgs({ cert: "6s", ca: "15s" }),
      env: { POD_NAME: `webhook-${name}` },
    });
    replicas.push(replica);
  }
  // The configurations exist before the replicas start, without a caBundle: the leader adds it.
  const selector = { matchLabels: { "appsnapshots-test": run } };
  await applyPodMutatingWebhook(kc, { name: mutating, url: `${replicas[0]!.url}/mutate/pods`, caPem: "", namespaceSelector: selector });
  await applyVeleroValidatingWebhook(kc, { name: validating, url: `${replicas[1]!.url}/validate/velero`, caPem: "", namespaceSelector: selector });
  await replicas[0]!.start();
  await replicas[1]!.start();
}, 90_000);

afterAll(async () => {
  for (const [kind, name] of [
    ["mutating", mutating],
    ["validating", validating],
  ] as const) {
    await kubeRequest(kc, "DELETE", `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${name}`).catch(() => undefined);
  }
  for (const replica of replicas) await replica.dispose();
});

describe("self-managed webhook certificates", () => {
  it("creates the Secret, patches caBundle into both configurations and serves pod and Velero admission", async () => {
    const secret = await readSecret();
    const bundle = decoded(secret, "ca.crt");
    const leaf = new X509Certificate(decoded(secret, "tls.crt"));
    expect(leaf.subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1");
    // The CA's private key never goes into a Velero backup; a restored webhook makes a new CA.
    expect(secret.metadata?.labels?.["velero.io/exclude-from-backup"]).toBe("true");
    expect(leaf.checkIssued(new X509Certificate(decoded(secret, "signer.crt")))).toBe(true);
    await until("caBundle in both configurations", async () => ((await caBundleOf("mutating", mutating)) === bundle && (await caBundleOf("validating", validating)) === bundle ? true : undefined));
    expect(await until("the pod webhook to mutate through the apiserver", () => admitPod("canary"))).toBe(`${apps}/databases`);
    expect(await rejectBackup("canary")).toContain(`spec.storageLocation: BackupStorageLocation ${apps}/nope does not exist`);
    // The storage certificate: its names, our CA, the bundle as ca.crt, and the location's caCert set to the bundle.
    const storage = await until("the storage Secret", () => readStorageSecret().catch(() => undefined));
    expect(new X509Certificate(decoded(storage, "tls.crt")).subjectAltName).toBe("DNS:localhost, IP Address:127.0.0.1");
    expect(storage.metadata?.labels?.["velero.io/exclude-from-backup"]).toBe("true");
    expect(verifiesWith(decoded(storage, "tls.crt"), decoded(storage, "ca.crt"))).toBe(true);
    await until("the location's caCert", async () => ((await locationCaCert()) === decoded(await readSecret(), "ca.crt") ? true : undefined));
    // Exactly one replica leads.
    expect((await metric(replicas[0]!, "app_snapshots_webhook_certificate_leader")) + (await metric(replicas[1]!, "app_snapshots_webhook_certificate_leader"))).toBe(1);
  });

  it("re-patches a caBundle someone else changed", async () => {
    const patchesBefore = (await metric(replicas[0]!, "app_snapshots_webhook_ca_bundle_patches_total")) + (await metric(replicas[1]!, "app_snapshots_webhook_ca_bundle_patches_total"));
    await kubeRequest(kc, "PATCH", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${mutating}`, [{ op: "remove", path: "/webhooks/0/clientConfig/caBundle" }], "application/json-patch+json");
    await until("the leader to restore the caBundle", async () => ((await caBundleOf("mutating", mutating)) === decoded(await readSecret(), "ca.crt") ? true : undefined), 10_000, 100);
    const patchesAfter = (await metric(replicas[0]!, "app_snapshots_webhook_ca_bundle_patches_total")) + (await metric(replicas[1]!, "app_snapshots_webhook_ca_bundle_patches_total"));
    expect(patchesAfter).toBeGreaterThan(patchesBefore);
  });

  it("keeps admission working across several renewals and CA rotations under load, without a restart", async () => {
    const pids = replicas.map((r) => r.pid());
    const failOpenBefore = await failOpenCount();
    const leaves = new Set<string>();
    const bundles = new Set<string>();
    const published = new Set<string>();
    const storageLeaves = new Set<string>();
    const failures: string[] = [];
    let admitted = 0;
    const deadline = Date.now() + 32_000;

    const watcher = (async () => {
      while (Date.now() < deadline) {
        const secret = await readSecret();
        leaves.add(decoded(secret, "tls.crt"));
        bundles.add(decoded(secret, "ca.crt"));
        published.add(await caBundleOf("mutating", mutating));
        // A client configured from the location (read first) must verify whatever certificate the storage serves next.
        const clientBundle = await locationCaCert();
        const storageLeaf = decoded(await readStorageSecret(), "tls.crt");
        storageLeaves.add(storageLeaf);
        if (!verifiesWith(storageLeaf, clientBundle)) failures.push("the storage certificate does not verify with the location's caCert");
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    const worker = async (id: number) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const [annotation, rejection] = await Promise.all([admitPod(`load-${id}-${i}`).catch((err: unknown) => `error: ${String(err)}`), rejectBackup(`load-${id}-${i}`)]);
        if (annotation !== `${apps}/databases`) failures.push(`pod load-${id}-${i}: ${annotation ?? "not mutated"}`);
        if (!rejection.includes("does not exist")) failures.push(`backup load-${id}-${i}: ${rejection}`);
        admitted += 2;
      }
    };
    await Promise.all([watcher, worker(1), worker(2), worker(3)]);

    console.log(`[certs] rotation under load: ${admitted} admission requests, ${leaves.size} serving certificates, ${storageLeaves.size} storage certificates, ${bundles.size} CA bundles, ${failures.length} failures`);
    expect(failures, failures.slice(0, 5).join("\n")).toEqual([]);
    expect(admitted).toBeGreaterThan(100);
    expect(await failOpenCount()).toBe(failOpenBefore);
    // 6 s certificates renewed at 4 s, a 15 s CA rotated at 10 s: several of each in 32 s.
    expect(leaves.size).toBeGreaterThanOrEqual(5);
    // 6 s storage certificates are renewed too, and follow the CA rotations.
    expect(storageLeaves.size).toBeGreaterThanOrEqual(4);
    expect(bundles.size).toBeGreaterThanOrEqual(3);
    expect(published.size).toBeGreaterThanOrEqual(3);
    expect(Math.max(...[...bundles].map((b) => b.match(/BEGIN CERTIFICATE/g)?.length ?? 0))).toBe(2);
    expect(replicas.map((r) => r.pid())).toEqual(pids);
    const changes = (await metric(replicas[0]!, "app_snapshots_webhook_certificate_changes_total")) + (await metric(replicas[1]!, "app_snapshots_webhook_certificate_changes_total"));
    expect(changes).toBeGreaterThanOrEqual(leaves.size - 1);
  }, 60_000);

  it("moves leadership to the other replica when the leader stops, and renewals continue", async () => {
    const leaderIndex = (await metric(replicas[0]!, "app_snapshots_webhook_certificate_leader")) === 1 ? 0 : 1;
    const follower = replicas[1 - leaderIndex]!;
    await replicas[leaderIndex]!.stop();
    await until("the follower to lead", async () => ((await metric(follower, "app_snapshots_webhook_certificate_leader")) === 1 ? true : undefined), 10_000, 100);
    const before = decoded(await readSecret(), "tls.crt");
    await until("a renewal by the new leader", async () => (decoded(await readSecret(), "tls.crt") !== before ? true : undefined), 10_000, 200);
    const lease = (await kubeRequest(kc, "GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${secretName}-leader`)).body as { spec: { holderIdentity: string; leaseTransitions: number } };
    expect(lease.spec.holderIdentity).toBe(leaderIndex === 0 ? "webhook-b" : "webhook-a");
  }, 30_000);
});
