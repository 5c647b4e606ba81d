// The chart installed for real (issue 15, section 4): our image on the real node, `helm install` with a hostPath
// volume, then the pods' probes, the pod webhook called by the apiserver through its Service, the S3 endpoint
// from inside a pod and from the host through port-forward, leader handover, a forced certificate rotation by
// `helm upgrade` under a stream of pod creates, and what `helm uninstall` leaves. Needs root, runc and cgroups,
// like the node's own suite.
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, parseBundle } from "../../src/certs/pem.js";
import { parseCredentials } from "../../src/s3/credentials.js";
import { toolPath } from "../cluster/binaries.js";
import { run } from "../cluster/node/host.js";
import { until } from "../cluster/wait.js";
import { startRealNode, sweepHost, type RealNode } from "../cluster/node/realNode.js";
import { chartDir } from "../chart/helm.js";
import { counterSum, helmOnNode, imageArchive, installChart, NAMESPACE, RELEASE, servedCertificate, storageCaBundle } from "./chartInstall.js";
import { withoutNode } from "./gate.js";
import { portForward } from "./portForward.js";

const IMAGE = "ghcr.io/app-snapshots/app-snapshots:0.1.0";
// `<release>-app-snapshots`, or the release name alone when it holds the chart's name (_helpers.tpl).
const FULLNAME = RELEASE;

let node: RealNode | undefined;
let hostPath = "";
const timings: Record<string, number> = {};

const started = () => {
  if (!node) throw new Error("the real node did not start");
  return node;
};

const ready = (pod: V1Pod) => pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

async function podsOf(component: string): Promise<V1Pod[]> {
  const core = started().kubeConfig.makeApiClient(CoreV1Api);
  return (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `app.kubernetes.io/component=${component}` })).items;
}

/** The webhook's /metrics of every replica (on its plain-HTTP health port), through the apiserver's pod proxy. */
async function webhookMetrics(): Promise<string> {
  const texts: string[] = [];
  for (const pod of await podsOf("webhook")) {
    const raw = `/api/v1/namespaces/${NAMESPACE}/pods/http:${pod.metadata!.name}:8080/proxy/metrics`;
    texts.push(run(toolPath("kubectl"), ["--kubeconfig", started().kubeconfigPath, "get", "--raw", raw]));
  }
  return texts.join("\n");
}

/** The generated S3 credentials, from the Secret the chart made. */
async function storageCredentials(): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const secret = await started().kubeConfig.makeApiClient(CoreV1Api).readNamespacedSecret({ name: `${FULLNAME}-storage-credentials`, namespace: NAMESPACE });
  const [accessKeyId, secretAccessKey] = [...parseCredentials(Buffer.from(secret.data!.cloud!, "base64").toString())][0]!;
  return { accessKeyId, secretAccessKey };
}

/** A dry-run pod create in namespace shop (SnapshotPolicy "all"): the webhook's annotation, or why there is none. */
async function admitDryRun(name: string): Promise<string> {
  try {
    const pod = await started()
      .kubeConfig.makeApiClient(CoreV1Api)
      .createNamespacedPod({
        namespace: "shop",
        dryRun: "All",
        body: {
          metadata: { name },
          spec: {
            volumes: [{ name: "data", emptyDir: {} }],
            containers: [{ name: "main", image: started().images.busybox, imagePullPolicy: "Never", command: ["sleep", "3600"], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
          },
        },
      });
    return pod.metadata?.annotations?.["appsnapshots.io/policy"] ?? "not annotated";
  } catch (err) {
    return `error: ${(err as Error).message.slice(0, 300)}`;
  }
}

/** The apiserver's count of pod-webhook calls that failed and were let through (failurePolicy Ignore). */
function failOpenCount(): number {
  const text = run(toolPath("kubectl"), ["--kubeconfig", started().kubeconfigPath, "get", "--raw", "/metrics"]);
  return counterSum(text, "apiserver_admission_webhook_fail_open_count", { name: "pods.appsnapshots.io" });
}

const leaseName = `${FULLNAME}-webhook-leader`;
const leaseHolder = async () => (await started().kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: leaseName, namespace: NAMESPACE })).spec?.holderIdentity ?? "";

describe.skipIf(withoutNode)("the chart, installed for real", () => {
  beforeAll(async () => {
    await sweepHost();
    const archive = imageArchive();
    node = await startRealNode({ log: (line) => console.log(`[real-node] ${line}`), imageArchives: [archive] });
    Object.assign(timings, node.timings);
    // The chart's README: kubelet does not chown hostPath volumes, the folder must be writable by 65532.
    hostPath = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-chart-store-"));
    chownSync(hostPath, 65532, 65532);
    // velero.namespace must exist before install (values.yaml): the credentials are copied there.
    await node.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: "velero" } } });
    const since = Date.now();
    try {
      await installChart(node.kubeconfigPath, hostPath);
    } catch (err) {
      // Say why the release never got Ready: the kubelet's probe failures (e.g. "connection refused") are events.
      const events = await node.kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: NAMESPACE });
      const unhealthy = [...new Set(events.items.filter((e) => e.type === "Warning").map((e) => `${e.involvedObject.name}: ${e.reason}: ${e.message}`))];
      throw new Error(`${(err as Error).message}\nwarnings in ${NAMESPACE}:\n${unhealthy.join("\n")}`, { cause: err });
    }
    timings["helm install --wait"] = (Date.now() - since) / 1000;
    console.log(`[chart] timings (s): ${JSON.stringify(timings)}`);
  }, 300_000);

  afterAll(async () => {
    await node?.stop();
    if (hostPath) rmSync(hostPath, { recursive: true, force: true });
  });

  it("brings both webhook replicas and the storage pod to Ready through their HTTP probes on the pod IP", async () => {
    const apps = started().kubeConfig.makeApiClient(AppsV1Api);
    const webhook = await apps.readNamespacedDeployment({ name: `${FULLNAME}-webhook`, namespace: NAMESPACE });
    const storage = await apps.readNamespacedDeployment({ name: `${FULLNAME}-storage`, namespace: NAMESPACE });
    expect({ webhook: webhook.status?.readyReplicas, storage: storage.status?.readyReplicas }).toEqual({ webhook: 2, storage: 1 });
    // The kubelet judges Ready by these probes: httpGet on the pod IP (no host), which the health-listen bug refused.
    for (const deployment of [webhook, storage]) {
      const container = deployment.spec!.template.spec!.containers[0]!;
      expect(container.image).toBe(IMAGE);
      expect(container.readinessProbe?.httpGet?.host).toBeUndefined();
      expect(container.readinessProbe?.httpGet?.port).toBeDefined();
    }
    const pods = [...(await podsOf("webhook")), ...(await podsOf("storage"))];
    expect(pods.map((p) => ({ ready: ready(p), restarts: p.status?.containerStatuses?.[0]?.restartCount }))).toEqual([
      { ready: true, restarts: 0 },
      { ready: true, restarts: 0 },
      { ready: true, restarts: 0 },
    ]);
  });

  it("annotates a pod the apiserver sends through the webhook's Service, and counts it in the webhook's metrics", async () => {
    const kc = started().kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const patchedBefore = counterSum(await webhookMetrics(), "app_snapshots_admission_requests_total", { webhook: "pods", outcome: "patched" });
    await core.createNamespace({ body: { metadata: { name: "shop" } } });
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: "appsnapshots.io",
      version: "v1alpha1",
      namespace: "shop",
      plural: "snapshotpolicies",
      body: { apiVersion: "appsnapshots.io/v1alpha1", kind: "SnapshotPolicy", metadata: { name: "all", namespace: "shop" }, spec: { podSelector: {}, volumes: { include: ["*"] } } },
    });
    // The webhook reads policies from a watch: a pod created before it saw the policy is not annotated, so retry.
    const annotations = await until(
      "a pod annotated by the webhook",
      async () => {
        const name = `app-${Date.now()}`;
        const pod = await core.createNamespacedPod({
          namespace: "shop",
          body: {
            metadata: { name },
            spec: {
              volumes: [{ name: "data", emptyDir: {} }],
              containers: [{ name: "main", image: started().images.busybox, imagePullPolicy: "Never", command: ["sleep", "3600"], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
            },
          },
        });
        await core.deleteNamespacedPod({ name, namespace: "shop", gracePeriodSeconds: 0 });
        return pod.metadata?.annotations?.["appsnapshots.io/policy"] ? pod.metadata.annotations : undefined;
      },
      30_000,
      1_000,
    );
    expect(annotations).toMatchObject({ "appsnapshots.io/policy": "shop/all", "backup.velero.io/backup-volumes": "data" });
    expect(counterSum(await webhookMetrics(), "app_snapshots_admission_requests_total", { webhook: "pods", outcome: "patched" })).toBeGreaterThan(patchedBefore);
  });

  it("serves S3 to a pod through the storage Service's DNS name: a presigned PUT, then a presigned GET", async () => {
    const kc = started().kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const { accessKeyId, secretAccessKey } = await storageCredentials();
    // Signed for the in-cluster endpoint, so the pod's requests carry the Host header they were signed for.
    const s3 = new S3Client({
      endpoint: `https://${FULLNAME}-storage.${NAMESPACE}.svc:9000`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
    });
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: "velero", Key: "from-a-pod/hello.txt" }), { expiresIn: 600 });
    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "velero", Key: "from-a-pod/hello.txt" }), { expiresIn: 600 });
    s3.destroy();
    // Our own image as the client: its node binary has fetch (busybox's wget cannot PUT).
    const script = [
      `const put = await fetch(${JSON.stringify(put)}, { method: "PUT", body: "written from a pod" });`,
      `const get = await fetch(${JSON.stringify(get)});`,
      `console.log(put.status, get.status, await get.text());`,
    ].join("\n");
    // The storage serves TLS by default: the client trusts the CA from the storage's Secret, as Velero does through
    // the location's caCert.
    await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "storage-ca" }, data: { "ca.crt": await storageCaBundle(kc) } } });
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "s3-client" },
        spec: {
          restartPolicy: "Never",
          volumes: [{ name: "ca", configMap: { name: "storage-ca" } }],
          containers: [
            {
              name: "main",
              image: IMAGE,
              imagePullPolicy: "Never",
              command: ["/usr/local/bin/node", "--input-type=module", "-e", script],
              env: [{ name: "NODE_EXTRA_CA_CERTS", value: "/ca/ca.crt" }],
              volumeMounts: [{ name: "ca", mountPath: "/ca" }],
            },
          ],
        },
      },
    });
    const phase = await until("s3-client to finish", async () => {
      const p = (await core.readNamespacedPod({ name: "s3-client", namespace: "default" })).status?.phase;
      return p === "Succeeded" || p === "Failed" ? p : undefined;
    }, 90_000);
    const logs = await core.readNamespacedPodLog({ name: "s3-client", namespace: "default" });
    expect({ phase, logs }).toEqual({ phase: "Succeeded", logs: "200 200 written from a pod\n" });
  });

  it("serves S3 to the host through kubectl port-forward to the storage Service: the AWS SDK writes, lists, reads and deletes", async () => {
    const forward = await portForward(started().kubeconfigPath, NAMESPACE, `svc/${FULLNAME}-storage`, 9000);
    try {
      // Through the tunnel the certificate still names the Service, so that is the name verified against the CA.
      const httpsAgent = new https.Agent({ ca: await storageCaBundle(started().kubeConfig), servername: `${FULLNAME}-storage.${NAMESPACE}.svc` });
      const s3 = new S3Client({
        endpoint: `https://127.0.0.1:${forward.port}`,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: await storageCredentials(),
        requestHandler: new NodeHttpHandler({ httpsAgent }),
      });
      try {
        const body = Buffer.alloc(3 * 1024 * 1024, "port-forwarded ");
        await s3.send(new PutObjectCommand({ Bucket: "velero", Key: "from-the-host/blob", Body: body }));
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: "velero", Prefix: "from-" }));
        expect(listed.Contents?.map((o) => o.Key).sort()).toEqual(["from-a-pod/hello.txt", "from-the-host/blob"]);
        const got = await s3.send(new GetObjectCommand({ Bucket: "velero", Key: "from-the-host/blob" }));
        expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
        await s3.send(new DeleteObjectCommand({ Bucket: "velero", Key: "from-the-host/blob" }));
        await expect(s3.send(new HeadObjectCommand({ Bucket: "velero", Key: "from-the-host/blob" }))).rejects.toMatchObject({ name: "NotFound" });
      } finally {
        s3.destroy();
      }
    } finally {
      forward.close();
    }
  });

  it("hands the leader Lease to another replica when the leader's pod is deleted, and admission goes on", async () => {
    const core = started().kubeConfig.makeApiClient(CoreV1Api);
    const holder = await leaseHolder();
    const replicas = (await podsOf("webhook")).map((p) => p.metadata!.name!);
    expect(replicas).toContain(holder);
    const since = Date.now();
    await core.deleteNamespacedPod({ name: holder, namespace: NAMESPACE });
    const successor = await until("another replica to hold the Lease", async () => {
      const now = await leaseHolder();
      return now !== "" && now !== holder ? now : undefined;
    }, 60_000, 200);
    timings["leader handover after pod delete"] = (Date.now() - since) / 1000;
    // The successor is a live replica (the survivor or the Deployment's replacement) and says it leads.
    expect((await podsOf("webhook")).map((p) => p.metadata!.name)).toContain(successor);
    await until("two Ready webhook replicas again", async () => {
      const pods = (await podsOf("webhook")).filter((p) => p.metadata?.name !== holder && !p.metadata?.deletionTimestamp);
      return pods.length === 2 && pods.every(ready) ? true : undefined;
    }, 120_000);
    const raw = `/api/v1/namespaces/${NAMESPACE}/pods/http:${successor}:8080/proxy/metrics`;
    expect(counterSum(run(toolPath("kubectl"), ["--kubeconfig", started().kubeconfigPath, "get", "--raw", raw]), "app_snapshots_webhook_certificate_leader", {})).toBe(1);
    expect(await admitDryRun("after-handover")).toBe("shop/all");
  });

  it("helm upgrade lowering the certificate lifetimes forces a rotation (new CA, serving certificates from it, the storage's too) with no failed admission under a stream of pod creates", async () => {
    const core = started().kubeConfig.makeApiClient(CoreV1Api);
    const tlsSecret = async () => (await core.readNamespacedSecret({ name: `${FULLNAME}-webhook-tls`, namespace: NAMESPACE })).data!;
    const decoded = (data: Record<string, string>, key: string) => Buffer.from(data[key]!, "base64").toString();
    const credentialsBefore = await storageCredentials();
    const signerBefore = parseCertificate(decoded(await tlsSecret(), "signer.crt")).fingerprint;
    const failOpenBefore = failOpenCount();
    const failures: string[] = [];
    let admitted = 0;
    let streaming = true;
    const stream = (async () => {
      for (let i = 0; streaming; i++) {
        const answer = await admitDryRun(`stream-${i}`);
        admitted++;
        if (answer !== "shop/all") failures.push(`stream-${i}: ${answer}`);
      }
    })();
    const leaves = new Set<string>();
    const since = Date.now();
    try {
      await helmOnNode(started().kubeconfigPath, ["upgrade", RELEASE, chartDir, "--namespace", NAMESPACE, "--reuse-values", "--set", "certs.caLifetime=180s", "--set", "certs.certLifetime=30s", "--set", "storage.tls.certLifetime=30s", "--wait", "--timeout", "180s"]);
      timings["helm upgrade --wait"] = (Date.now() - since) / 1000;
      // A new CA with the lowered lifetime signs what is served, and serving certificates keep being renewed from it.
      // The shortest the webhook accepts with its 10 s publish delay (three delays within each lifetime's third).
      await until("a new 180 s CA and two serving certificates from it (the first, then its renewal)", async () => {
        const data = await tlsSecret();
        const signer = parseCertificate(decoded(data, "signer.crt"));
        const leaf = parseCertificate(decoded(data, "tls.crt"));
        if (signer.fingerprint !== signerBefore && leaf.x509.checkIssued(signer.x509)) leaves.add(leaf.fingerprint);
        return leaves.size >= 2 ? true : undefined;
      }, 150_000, 500);
    } finally {
      streaming = false;
      await stream;
    }
    const data = await tlsSecret();
    const signer = parseCertificate(decoded(data, "signer.crt"));
    console.log(`[chart] rotation under load: ${admitted} pod creates, ${leaves.size} serving certificates from the new CA, ${failures.length} failures`);
    expect(failures, failures.slice(0, 5).join("\n")).toEqual([]);
    expect(admitted).toBeGreaterThan(50);
    expect(failOpenCount()).toBe(failOpenBefore);
    expect(signer.fingerprint).not.toBe(signerBefore);
    expect(signer.notAfter - signer.notBefore).toBe(180_000 + 60_000);
    expect(parseBundle(decoded(data, "ca.crt"))[0]!.fingerprint).toBe(signer.fingerprint);
    // The webhook configurations trust what is served.
    const mutating = JSON.parse(run(toolPath("kubectl"), ["--kubeconfig", started().kubeconfigPath, "get", "mutatingwebhookconfiguration", `${FULLNAME}-pods`, "-o", "json"])) as { webhooks: Array<{ clientConfig: { caBundle: string } }> };
    expect(mutating.webhooks.every((w) => Buffer.from(w.clientConfig.caBundle, "base64").toString() === decoded(data, "ca.crt"))).toBe(true);
    // The storage follows the new CA: the webhook issues its certificate from it, and the storage, which reads the
    // Secret from its volume (kubelet refreshes that on its sync period, about a minute), serves one from it too.
    // With the lowered 30 s lifetime the Secret renews faster than kubelet refreshes, so what is served may be a
    // renewal behind (even expired): the check is the issuer, not the Secret's latest leaf.
    await until("the storage's Secret holding a certificate from the new CA", async () => {
      const storage = (await core.readNamespacedSecret({ name: `${FULLNAME}-storage-tls`, namespace: NAMESPACE })).data!;
      return parseCertificate(decoded(storage, "tls.crt")).x509.checkIssued(signer.x509) ? true : undefined;
    }, 120_000, 1_000);
    const storageIp = (await core.readNamespacedService({ name: `${FULLNAME}-storage`, namespace: NAMESPACE })).spec!.clusterIP!;
    await until("the storage serving a certificate from the new CA", async () => ((await servedCertificate(storageIp, 9000))?.checkIssued(signer.x509) ? true : undefined), 150_000, 1_000);
    // What an upgrade keeps (chart README): the generated S3 credentials, and the objects on the volume.
    expect(await storageCredentials()).toEqual(credentialsBefore);
    const webhookPods = await podsOf("webhook");
    expect(webhookPods.filter((p) => !p.metadata?.deletionTimestamp).every((p) => ready(p) && p.status?.containerStatuses?.[0]?.restartCount === 0)).toBe(true);
  }, 420_000);

  it("helm uninstall leaves only the CRDs and what the webhook made at runtime: the webhook-tls and storage-tls Secrets and the leader Lease", async () => {
    const kc = started().kubeConfig;
    const since = Date.now();
    await helmOnNode(started().kubeconfigPath, ["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "120s"]);
    timings["helm uninstall --wait"] = (Date.now() - since) / 1000;
    console.log(`[chart] timings (s): ${JSON.stringify(timings)}`);
    const core = kc.makeApiClient(CoreV1Api);
    await until("the release's pods gone", async () => ((await core.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0 ? true : undefined), 60_000);
    const names = (items: Array<{ metadata?: { name?: string } }>) => items.map((o) => o.metadata!.name!).sort();
    const leftIn = async (namespace: string) => ({
      secrets: names((await core.listNamespacedSecret({ namespace })).items),
      configMaps: names((await core.listNamespacedConfigMap({ namespace })).items),
      serviceAccounts: names((await core.listNamespacedServiceAccount({ namespace })).items),
      services: names((await core.listNamespacedService({ namespace })).items),
      claims: names((await core.listNamespacedPersistentVolumeClaim({ namespace })).items),
    });
    expect(await leftIn(NAMESPACE)).toEqual({
      secrets: [`${FULLNAME}-storage-tls`, `${FULLNAME}-webhook-tls`],
      configMaps: ["kube-root-ca.crt"],
      serviceAccounts: ["default"],
      services: [],
      claims: [],
    });
    expect((await leftIn("velero")).secrets).toEqual([]);
    expect(names((await core.listPersistentVolume()).items)).toEqual([]);
    const objects = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: "coordination.k8s.io", version: "v1", namespace: NAMESPACE, plural: "leases" })) as { items: Array<{ metadata?: { name?: string } }> };
    expect(names(objects.items)).toEqual([`${FULLNAME}-webhook-leader`]);
    const cluster = kc.makeApiClient(CustomObjectsApi);
    const clusterScoped = async (group: string, plural: string) =>
      names(((await cluster.listClusterCustomObject({ group, version: "v1", plural })) as { items: Array<{ metadata?: { name?: string } }> }).items).filter((n) => n.includes("app-snapshots") && !n.includes("coredns"));
    expect({
      mutating: await clusterScoped("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
      validating: await clusterScoped("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
      clusterRoles: await clusterScoped("rbac.authorization.k8s.io", "clusterroles"),
      clusterRoleBindings: await clusterScoped("rbac.authorization.k8s.io", "clusterrolebindings"),
      crds: names(((await cluster.listClusterCustomObject({ group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" })) as { items: Array<{ metadata?: { name?: string } }> }).items).filter((n) => n.endsWith("appsnapshots.io")),
    }).toEqual({
      mutating: [],
      validating: [],
      clusterRoles: [],
      clusterRoleBindings: [],
      crds: ["clustersnapshotpolicies.appsnapshots.io", "snapshotpolicies.appsnapshots.io"],
    });
  });
});
