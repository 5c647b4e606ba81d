// Velero end to end on the real node (issue 16, scenario A): Velero and velero-plugin-for-aws as images, installed
// as users install them (`velero install --dry-run -o yaml`, applied) with node-agent, storing into our chart's
// S3 endpoint through the BackupStorageLocation the chart's NOTES print. An app under Pod Security "restricted"
// with a PVC and an emptyDir is backed up by kopia file-system backup with its SnapshotPolicy's hooks running in
// its container, deleted, and restored: Velero's restore-wait runs first, the data is equal file by file.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, issueCertificate } from "../../src/certs/authority.js";
import { run } from "../cluster/node/host.js";
import { until } from "../cluster/wait.js";
import { storeListing } from "../s3/inspect.js";
import { NAMESPACE, RELEASE } from "./chartInstall.js";
import { withoutNode } from "./gate.js";
import { APP, currentStack, VELERO_NS, VeleroScenario } from "./veleroScenario.js";

const IMAGE = "ghcr.io/app-snapshots/app-snapshots:0.1.0";
let scenario: VeleroScenario | undefined;

const started = () => {
  if (!scenario) throw new Error("the real node with Velero did not start");
  return scenario;
};

/**
 * Another mutating webhook, as service meshes and security agents run them: it puts its own init container first
 * in every pod of namespace shop, moving it there when a restored pod has it elsewhere. Our webhook (reinvocationPolicy IfNeeded) must put Velero's restore-wait back
 * in front on restored pods. It runs in our image (its node binary), with a certificate made here.
 */
async function installOtherWebhook(on: VeleroScenario): Promise<void> {
  const core = on.node.kubeConfig.makeApiClient(CoreV1Api);
  const ca = createCa({ commonName: "other-webhook-ca", validityDays: 1 });
  const serving = issueCertificate(ca, { commonName: "other-webhook.other.svc", dnsNames: ["other-webhook.other.svc"], usage: "server", validityDays: 1 });
  await core.createNamespace({ body: { metadata: { name: "other" } } });
  await core.createNamespacedSecret({ namespace: "other", body: { metadata: { name: "tls" }, stringData: { "tls.crt": serving.certPem, "tls.key": serving.keyPem } } });
  const init = { name: "other-init", image: on.node.images.busybox, imagePullPolicy: "Never", command: ["true"], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } } };
  const script = `
    const https = await import("node:https"); const fs = await import("node:fs");
    const init = ${JSON.stringify(init)};
    https.createServer({ cert: fs.readFileSync("/tls/tls.crt"), key: fs.readFileSync("/tls/tls.key") }, (req, res) => {
      let body = ""; req.on("data", (c) => (body += c)); req.on("end", () => {
        const review = JSON.parse(body); const pod = review.request.object;
        const at = (pod.spec.initContainers ?? []).findIndex((c) => c.name === init.name);
        const patch = at === 0 ? [] : !pod.spec.initContainers ? [{ op: "add", path: "/spec/initContainers", value: [init] }]
          : [...(at > 0 ? [{ op: "remove", path: "/spec/initContainers/" + at }] : []), { op: "add", path: "/spec/initContainers/0", value: init }];
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: review.request.uid, allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") } }));
      });
    }).listen(8443);`;
  await core.createNamespacedPod({
    namespace: "other",
    body: {
      metadata: { name: "other-webhook", labels: { app: "other-webhook" } },
      spec: {
        volumes: [{ name: "tls", secret: { secretName: "tls" } }],
        containers: [{ name: "main", image: IMAGE, imagePullPolicy: "Never", command: ["/usr/local/bin/node", "--input-type=module", "-e", script], volumeMounts: [{ name: "tls", mountPath: "/tls" }], readinessProbe: { tcpSocket: { port: 8443 } } }],
      },
    },
  });
  await core.createNamespacedService({ namespace: "other", body: { metadata: { name: "other-webhook" }, spec: { selector: { app: "other-webhook" }, ports: [{ port: 443, targetPort: 8443 }] } } });
  await until("the other webhook Ready", async () => ((await core.readNamespacedPod({ name: "other-webhook", namespace: "other" })).status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined), 60_000);
  on.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      // Named after ours: the apiserver calls configurations in name order, so this one mutates last.
      metadata: { name: "zz-other-injector" },
      webhooks: [
        {
          name: "inject.other.example",
          clientConfig: { service: { namespace: "other", name: "other-webhook" }, caBundle: Buffer.from(ca.certPem).toString("base64") },
          rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": APP } },
          failurePolicy: "Fail",
          sideEffects: "None",
          reinvocationPolicy: "Never",
          admissionReviewVersions: ["v1"],
        },
      ],
    }),
  );
}

beforeAll(async () => {
  if (withoutNode) return;
  scenario = await VeleroScenario.start(currentStack());
  console.log(`[velero] timings (s): ${JSON.stringify(scenario.timings)}`);
}, 600_000);

afterAll(async () => {
  await scenario?.stop();
});

describe.skipIf(withoutNode)("Velero with kopia through our S3 endpoint, on the real node", () => {
  it("backs up a restricted app with its hooks, restores it after the namespace is gone, data equal and restore-wait first", async () => {
    const on = started();
    const before = await on.createApp(() => installOtherWebhook(on));
    on.backUp("b1", "kopia");
    const pod = await on.deleteAndRestore("b1", "r1");
    // Velero's restore-wait first, although the other webhook put its container first after ours had run.
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(["restore-wait", "other-init"]);
    expect(pod.status!.initContainerStatuses![0]!.state?.terminated?.exitCode).toBe(0);
    expect(on.appData()).toEqual(before);
    // restore-wait saw every volume's done file. It cannot remove `.velero` here: it runs as non-root since Velero
    // 1.16 (PR 8491) while node-agent writes the folder as root, which Velero tracks as issue 8973 (open). So the
    // folder stays, holding only this restore's empty done file, in both volumes.
    const restoreUid = (JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "restore", "r1", "-o", "json"])) as { metadata: { uid: string } }).metadata.uid;
    expect(on.kubectl(["-n", APP, "logs", "db", "-c", "restore-wait"])).toContain("All restic restores are done");
    expect(on.exec("ls -A /data/.velero /cache/.velero; find /data/.velero /cache/.velero -type f -size +0 | wc -l")).toBe(`/cache/.velero:\n${restoreUid}\n\n/data/.velero:\n${restoreUid}\n0\n`);
    await until("the post-restore hook's file", () => Promise.resolve(on.exec("cat /cache/restored-from-dump.txt 2>/dev/null || true").trim() === "20000" ? true : undefined), 60_000);
    console.log(`[velero] timings (s): ${JSON.stringify(on.timings)}`);
  });

  it("a backup whose storage pod is deleted while kopia uploads ends Completed or Failed with a reason, leaves no stray in the store, and the next backup Completes", async () => {
    const on = started();
    const core = on.node.kubeConfig.makeApiClient(CoreV1Api);
    // Incompressible data, so kopia is still uploading when the storage pod goes.
    on.exec("head -c 134217728 /dev/urandom > /cache/blob.bin");
    on.velero(["backup", "create", "b2", "--include-namespaces", APP]);
    const uploading = await until("b2's PodVolumeBackup of the cache uploading", () => {
      const list = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "podvolumebackups", "-l", "velero.io/backup-name=b2", "-o", "json"])) as { items: Array<{ spec: { volume: string }; status?: { phase?: string; progress?: { bytesDone?: number } } }> };
      const cache = list.items.find((p) => p.spec.volume === "cache");
      return Promise.resolve(cache?.status?.phase === "InProgress" ? cache : undefined);
    }, 120_000, 100);
    const [storagePod] = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: "app.kubernetes.io/component=storage" })).items;
    await core.deleteNamespacedPod({ name: storagePod!.metadata!.name!, namespace: NAMESPACE, gracePeriodSeconds: 0 });
    const ended = await until("b2 to end", () => {
      const backup = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backup", "b2", "-o", "json"])) as { status?: { phase?: string; failureReason?: string; errors?: number } };
      return Promise.resolve(["Completed", "Failed", "PartiallyFailed"].includes(backup.status?.phase ?? "") ? backup.status! : undefined);
    }, 600_000, 1_000);
    console.log(`[velero] storage deleted at ${uploading.status?.progress?.bytesDone ?? 0} bytes uploaded: b2 ${JSON.stringify(ended)}`);
    if (ended.phase !== "Completed") {
      // Failed with a reason: Velero says which volume and why, in the status or the backup's errors.
      expect(ended.failureReason || (ended.errors ?? 0) > 0).toBeTruthy();
      expect(on.velero(["backup", "describe", "b2", "--details", "--colorized=false"])).toMatch(/cache|storage|connection|EOF|timeout/i);
    }
    // The Deployment's new storage pod serves the same volume: nothing half-written is visible as an object.
    await until("the storage pod back", async () => {
      const pods = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: "app.kubernetes.io/component=storage" })).items;
      return pods.some((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) ? true : undefined;
    }, 120_000);
    expect((await storeListing(on.storeRoot)).strays).toEqual([]);
    on.velero(["backup", "create", "b3", "--include-namespaces", APP, "--wait"]);
    const b3 = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backup", "b3", "-o", "json"])) as { status: { phase: string } };
    expect(b3.status.phase).toBe("Completed");
    const pvbs = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "podvolumebackups", "-l", "velero.io/backup-name=b3", "-o", "json"])) as { items: Array<{ spec: { volume: string }; status: { phase: string } }> };
    expect(pvbs.items.map((p) => [p.spec.volume, p.status.phase]).sort()).toEqual([
      ["cache", "Completed"],
      ["data", "Completed"],
    ]);
  });

  it("serves velero backup describe, logs and download through presigned URLs to our storage", () => {
    const on = started();
    expect(on.velero(["backup", "describe", "b1", "--details", "--colorized=false"])).toMatch(/Phase:\s+Completed/);
    expect(on.velero(["backup", "logs", "b1"])).toMatch(/Backed up a total of \d+ items/);
    const out = on.folder("app-snapshots-velero-download-");
    const file = path.join(out, "b1.tar.gz");
    on.velero(["backup", "download", "b1", "-o", file]);
    expect(run("tar", ["-tzf", file])).toMatch(/resources\/pods\/namespaces\/shop\/db\.json/);
  });

  it("verifies the storage's certificate: a location trusting another CA is Unavailable with a certificate error and a backup to it fails validation; the CLI trusting another CA cannot fetch logs", async () => {
    const on = started();
    const stranger = createCa({ commonName: "not-the-storage-ca", validityDays: 1 });
    // Velero 1.17+'s CLI verifies the public URL with the location's caCert (the tests above pass no --cacert:
    // pkg/cmd/cli/backup/logs.go 82, GetCACertFromBackup); told to trust another CA, it refuses the storage.
    const strangerFile = path.join(on.folder("app-snapshots-stranger-ca-"), "ca.crt");
    writeFileSync(strangerFile, stranger.certPem);
    expect(() => on.velero(["backup", "logs", "b1", "--cacert", strangerFile])).toThrow(/x509: certificate signed by unknown authority/);
    // A twin of the chart's location (our webhook only warns about twins) whose caCert is the stranger's.
    const chartLocation = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backupstoragelocation", RELEASE, "-o", "json"])) as { spec: { objectStorage: Record<string, unknown> } & Record<string, unknown> };
    const spec = { ...chartLocation.spec, default: false, objectStorage: { ...chartLocation.spec.objectStorage, caCert: Buffer.from(stranger.certPem).toString("base64") } };
    on.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "velero.io/v1", kind: "BackupStorageLocation", metadata: { name: "wrong-ca", namespace: VELERO_NS }, spec }));
    const status = await until("location wrong-ca Unavailable", () => {
      const location = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backupstoragelocation", "wrong-ca", "-o", "json"])) as { status?: { phase?: string; message?: string } };
      return Promise.resolve(location.status?.phase === "Unavailable" ? location.status : undefined);
    }, 180_000, 1_000);
    // The reason, in the status (Velero 1.18 keeps the last validation error there) or in the server's log for it.
    const serverLog = on.kubectl(["-n", VELERO_NS, "logs", "deployment/velero"]).split("\n").filter((line) => line.includes("wrong-ca")).join("\n");
    expect(`${status.message ?? ""}\n${serverLog}`).toMatch(/x509: certificate signed by unknown authority|certificate is not trusted/);
    // Velero never sends data to it (backup_controller.go, prepareBackupRequest: an Unavailable location fails validation).
    on.velero(["backup", "create", "to-wrong-ca", "--include-namespaces", APP, "--storage-location", "wrong-ca"]);
    const backup = await until("backup to-wrong-ca to end", () => {
      const got = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backup", "to-wrong-ca", "-o", "json"])) as { status?: { phase?: string; validationErrors?: string[] } };
      return Promise.resolve(got.status?.phase && !["New", "InProgress"].includes(got.status.phase) ? got.status : undefined);
    }, 120_000, 1_000);
    expect(backup.phase).toBe("FailedValidation");
    expect(backup.validationErrors?.join("\n")).toMatch(/wrong-ca is in Unavailable status/);
    on.kubectl(["-n", VELERO_NS, "delete", "backup", "to-wrong-ca"]);
    on.kubectl(["-n", VELERO_NS, "delete", "backupstoragelocation", "wrong-ca"]);
  });

  it("keeps our Secrets out of a Velero backup of our namespace and Velero's: the CA key, the storage's TLS and access keys and Helm's release records", () => {
    const on = started();
    on.velero(["backup", "create", "ours", "--include-namespaces", `${NAMESPACE},${VELERO_NS}`, "--wait"]);
    const file = path.join(on.folder("app-snapshots-velero-download-"), "ours.tar.gz");
    on.velero(["backup", "download", "ours", "-o", file]);
    const listed = run("tar", ["-tzf", file]);
    const secrets = [...listed.matchAll(/resources\/secrets\/namespaces\/([^/]+)\/([^/]+)\.json/g)].map((m) => `${m[1]}/${m[2]}`).sort();
    // Not vacuous: our Deployments are in it, and so are Velero's own Secrets, which carry no exclusion label.
    expect(listed).toMatch(new RegExp(`resources/deployments\\.apps/namespaces/${NAMESPACE}/${RELEASE}-storage\\.json`));
    expect(secrets).toContain(`${VELERO_NS}/velero-repo-credentials`);
    expect(secrets.filter((name) => name.startsWith(`${NAMESPACE}/`) || name.includes("app-snapshots") || name.includes("sh.helm.release"))).toEqual([]);
    // They exist in the cluster, so the backup left them out on purpose.
    const ours = on.kubectl(["get", "secrets", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}"]).split("\n");
    expect(ours).toEqual(expect.arrayContaining([`${NAMESPACE}/${RELEASE}-webhook-tls`, `${NAMESPACE}/${RELEASE}-storage-tls`, `${NAMESPACE}/${RELEASE}-storage-credentials`, `${VELERO_NS}/${RELEASE}-storage-credentials`, `${NAMESPACE}/sh.helm.release.v1.${RELEASE}.v2`]));
  });
});
