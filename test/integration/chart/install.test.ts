import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { KubeConfig } from "@kubernetes/client-node";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { createCa } from "../../../src/certs/authority.js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseCredentials } from "../../../src/s3/credentials.js";
import { KubeRequestError, kubeRequest } from "../../../src/kube/request.js";
import { repoRoot } from "../../cluster/binaries.js";
import { identityKubeConfig } from "../../cluster/controlPlane.js";
import { freePort, startChild, type Child } from "../../cluster/processes.js";
import { until } from "../../cluster/wait.js";
import { webhookProcess, type WebhookProcess } from "../../cluster/webhook.js";
import { chartDir, helm } from "../../chart/helm.js";

/**
 * `helm install` of the chart into the local control plane, then the processes the chart would
 * run, started locally (no kubelet runs pods here) with the Deployments' own arguments and the
 * chart's ServiceAccount identity: proves the arguments, the RBAC and the self-managed
 * certificate flow end to end, and that `helm upgrade` keeps credentials and certificates.
 */
const cluster = inject("cluster");
const admin = new KubeConfig();
admin.loadFromFile(cluster.kubeconfigPath);

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const release = "snap";
const fullname = `${release}-app-snapshots`;
const ns = `chart-${run}`;
const veleroNs = `chart-velero-${run}`;
const apps = `chart-apps-${run}`;
const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-chart-"));
let webhookPort: number;
let webhook: WebhookProcess | undefined;
let storage: Child | undefined;
let installed = false;

interface Deployment {
  spec: { template: { spec: { serviceAccountName: string; containers: Array<{ args: string[] }> } } };
}
interface Secret {
  data: Record<string, string>;
  metadata: { resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}
const get = async <T>(apiPath: string, kc: KubeConfig = admin) => (await kubeRequest(kc, "GET", apiPath)).body as T;
const secret = (namespace: string, name: string) => get<Secret>(`/api/v1/namespaces/${namespace}/secrets/${name}`);
const decode = (value: string | undefined) => Buffer.from(value ?? "", "base64").toString();
const caBundles = async () =>
  Promise.all(
    [`mutatingwebhookconfigurations/${fullname}-pods`, `validatingwebhookconfigurations/${fullname}-velero`].map(async (p) =>
      decode((await get<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(`/apis/admissionregistration.k8s.io/v1/${p}`)).webhooks[0]!.clientConfig.caBundle),
    ),
  );

/** The container's args without the flags named (each given as `--flag value` or `--flag=value`). */
function withoutFlags(args: string[], flags: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const name = arg.split("=")[0]!;
    if (!flags.includes(name)) out.push(arg);
    else if (!arg.includes("=")) i++; // skip its value too
  }
  return out;
}

async function deploymentArgs(name: string): Promise<{ args: string[]; serviceAccount: string }> {
  const deployment = await get<Deployment>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`);
  return { args: deployment.spec.template.spec.containers[0]!.args, serviceAccount: deployment.spec.template.spec.serviceAccountName };
}

/** A kubeconfig file for a ServiceAccount of the chart (RBAC matches ServiceAccount subjects by user name). */
function serviceAccountKubeconfig(serviceAccount: string): { file: string; kc: KubeConfig } {
  const kc = identityKubeConfig(cluster, `system:serviceaccount:${ns}:${serviceAccount}`, ["system:serviceaccounts", `system:serviceaccounts:${ns}`]);
  const file = path.join(dir, `${serviceAccount}.kubeconfig`);
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return { file, kc };
}

const helmArgs = (verb: "install" | "upgrade", extra: string[] = []) => [
  verb,
  release,
  chartDir,
  "--namespace",
  ns,
  ...(verb === "install" ? ["--create-namespace"] : []),
  "-f",
  path.join(chartDir, "ci", "hostpath-values.yaml"),
  "--set",
  `webhook.url=https://127.0.0.1:${webhookPort}`,
  "--set",
  `velero.namespace=${veleroNs}`,
  ...extra,
];

beforeAll(async () => {
  webhookPort = await freePort();
  for (const name of [veleroNs, apps]) await kubeRequest(admin, "POST", "/api/v1/namespaces", { metadata: { name } });
  await kubeRequest(admin, "POST", `/apis/appsnapshots.io/v1alpha1/namespaces/${apps}/snapshotpolicies`, {
    apiVersion: "appsnapshots.io/v1alpha1",
    kind: "SnapshotPolicy",
    metadata: { name: "databases", namespace: apps },
    spec: { podSelector: { matchLabels: { app: "postgres" } }, hooks: { preBackup: { command: ["/bin/sh", "-c", "sync"] } } },
  });
  const install = await helm(helmArgs("install"), { kubeconfig: cluster.kubeconfigPath, timeoutMs: 90_000 });
  expect(install.code, install.stderr).toBe(0);
  installed = true;
}, 120_000);

afterAll(async () => {
  await webhook?.dispose();
  await storage?.stop();
  if (installed) await helm(["uninstall", release, "--namespace", ns], { kubeconfig: cluster.kubeconfigPath });
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/**
 * The webhook as the chart runs it: the Deployment's arguments (the pod listens on 0.0.0.0:8443
 * behind the Service; here on loopback, where webhook.url points) under the chart's ServiceAccount.
 * `extra` flags come last and so override the chart's.
 */
async function startWebhook(extra: string[] = []): Promise<void> {
  const { args, serviceAccount } = await deploymentArgs(`${fullname}-webhook`);
  webhook = await webhookProcess({
    kubeconfigPath: serviceAccountKubeconfig(serviceAccount).file,
    tls: "self-managed",
    extraArgs: [...withoutFlags(args.slice(1), ["--host", "--port", "--health-port"]), "--cert-ip=127.0.0.1", ...extra],
    env: { POD_NAMESPACE: ns, POD_NAME: `${fullname}-webhook-0` },
    port: webhookPort,
  });
  await webhook.start();
}

const pod = (name: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: apps, labels: { app: "postgres" } },
  spec: { containers: [{ name: "postgres", image: "postgres:17", volumeMounts: [{ name: "data", mountPath: "/var/lib/postgresql/data" }] }], volumes: [{ name: "data", emptyDir: {} }] },
});

describe("helm install of the chart, with its processes run locally", () => {
  it("runs the webhook with the Deployment's arguments as the chart's ServiceAccount: Secret created, caBundle patched, pods mutated", async () => {
    const { args } = await deploymentArgs(`${fullname}-webhook`);
    expect(args[0]).toBe("webhook");
    expect(args).toContain(`--tls-secret=${fullname}-webhook-tls`);
    await startWebhook();

    const tls = await secret(ns, `${fullname}-webhook-tls`);
    const bundle = decode(tls.data["ca.crt"]);
    expect(bundle).toContain("BEGIN CERTIFICATE");
    await until("caBundle in the chart's two webhook configurations", async () => ((await caBundles()).every((b) => b === bundle) ? true : undefined), 15_000);
    const created = (await kubeRequest(admin, "POST", `/api/v1/namespaces/${apps}/pods`, pod("postgres-0"))).body as { metadata: { annotations?: Record<string, string> } };
    expect(created.metadata.annotations?.["appsnapshots.io/policy"]).toBe(`${apps}/databases`);
    expect(created.metadata.annotations?.["pre.hook.backup.velero.io/command"]).toBe('["/bin/sh","-c","sync"]');
    // Velero admission through the chart's ValidatingWebhookConfiguration.
    const rejected = await kubeRequest(admin, "POST", `/apis/velero.io/v1/namespaces/${veleroNs}/backups?dryRun=All`, {
      apiVersion: "velero.io/v1",
      kind: "Backup",
      metadata: { name: "b" },
      spec: { storageLocation: "nope" },
    }).then(
      () => "accepted",
      (err: unknown) => String((err as Error).message),
    );
    expect(rejected).toContain(`BackupStorageLocation ${veleroNs}/nope does not exist`);
    // The chart's RBAC was enough: no request of the webhook was refused.
    expect(readFileSync(webhook!.logFile, "utf8")).not.toMatch(/forbidden/i);
  }, 60_000);

  it("grants the webhook's ServiceAccount nothing beyond its own objects", async () => {
    const { serviceAccount } = await deploymentArgs(`${fullname}-webhook`);
    const { kc } = serviceAccountKubeconfig(serviceAccount);
    const status = (promise: Promise<unknown>) =>
      promise.then(
        () => 200,
        (err: unknown) => (err instanceof KubeRequestError ? err.status : 0),
      );
    await kubeRequest(admin, "POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", { metadata: { name: `other-${run}` }, webhooks: [] });
    try {
      expect(await status(kubeRequest(kc, "GET", `/api/v1/namespaces/${apps}/secrets`))).toBe(403);
      expect(await status(kubeRequest(kc, "GET", `/api/v1/namespaces/${ns}/secrets`))).toBe(403);
      // Its own Secret only by name, and only the way the process reads it (list+watch by field selector).
      expect(await status(kubeRequest(kc, "GET", `/api/v1/namespaces/${ns}/secrets?fieldSelector=metadata.name%3D${fullname}-webhook-tls`))).toBe(200);
      expect(await status(kubeRequest(kc, "GET", `/api/v1/namespaces/${ns}/secrets?fieldSelector=metadata.name%3D${fullname}-storage-credentials`))).toBe(403);
      expect(await status(kubeRequest(kc, "PATCH", `/api/v1/namespaces/${ns}/secrets/${fullname}-webhook-tls`, {}, "application/merge-patch+json"))).toBe(403);
      expect(await status(kubeRequest(kc, "GET", `/api/v1/namespaces/${ns}/secrets/${fullname}-storage-credentials`))).toBe(403);
      // Secrets in Velero's namespace only with webhook.velero.checkSecretKeys (off by default).
      expect(await status(kubeRequest(kc, "GET", `/api/v1/namespaces/${veleroNs}/secrets/${fullname}-storage-credentials`))).toBe(403);
      expect(await status(kubeRequest(kc, "PATCH", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other-${run}`, [], "application/json-patch+json"))).toBe(403);
      expect(await status(kubeRequest(kc, "DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${fullname}-pods`))).toBe(403);
      expect(await status(kubeRequest(kc, "GET", `/apis/apps/v1/namespaces/${ns}/deployments`))).toBe(403);
      expect(await status(kubeRequest(kc, "POST", `/api/v1/namespaces/${apps}/pods`, pod("not-allowed")))).toBe(403);
    } finally {
      await kubeRequest(admin, "DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other-${run}`);
    }
  });

  it("runs the storage service with the Deployment's arguments, the generated credentials and the certificate the webhook issued (chart RBAC only)", async () => {
    const { args } = await deploymentArgs(`${fullname}-storage`);
    expect(args[0]).toBe("storage");
    const credentials = await secret(ns, `${fullname}-storage-credentials`);
    const copy = await secret(veleroNs, `${fullname}-storage-credentials`);
    expect(copy.data).toEqual(credentials.data);
    const file = path.join(dir, "cloud");
    writeFileSync(file, decode(credentials.data.cloud), { mode: 0o600 });
    const [s3Port, healthPort] = [await freePort(), await freePort()];
    const root = path.join(dir, "root");
    mkdirSync(root);
    // The storage certificate the webhook process (chart RBAC only) issued from its CA, as the pod mounts it.
    const tls = (await until("the storage certificate Secret", () => secret(ns, `${fullname}-storage-tls`).catch(() => undefined))).data;
    for (const key of ["tls.crt", "tls.key", "ca.crt"]) writeFileSync(path.join(dir, key), decode(tls[key]), { mode: 0o600 });
    expect(args).toEqual(expect.arrayContaining(["--tls-cert=/etc/app-snapshots/tls/tls.crt", "--tls-key=/etc/app-snapshots/tls/tls.key"]));
    storage = startChild(
      "app-snapshots storage",
      process.execPath,
      [
        path.join(repoRoot, "dist", "src", "cli.js"),
        ...withoutFlags(args, ["--root", "--s3-listen", "--health-listen", "--credentials", "--tls-cert", "--tls-key"]),
        `--tls-cert=${path.join(dir, "tls.crt")}`,
        `--tls-key=${path.join(dir, "tls.key")}`,
        `--root=${root}`,
        `--s3-listen=127.0.0.1:${s3Port}`,
        `--health-listen=127.0.0.1:${healthPort}`,
        `--credentials=${file}`,
      ],
      path.join(dir, "storage.log"),
    );
    await until("the storage service to be ready", async () => ((await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 20_000);
    const [pair] = [...parseCredentials(decode(credentials.data.cloud))];
    // Trusting only the Secret's ca.crt (what the location's caCert holds), under the Service's name.
    const agent = new https.Agent({ ca: decode(tls["ca.crt"]), servername: `${fullname}-storage.${ns}.svc` });
    const client = new S3Client({
      endpoint: `https://127.0.0.1:${s3Port}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: pair![0], secretAccessKey: pair![1] },
      requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
    });
    const buckets = await client.send(new ListBucketsCommand({}));
    expect(buckets.Buckets?.map((b) => b.Name)).toEqual(["velero"]);
    client.destroy();
    agent.destroy();
    // A client trusting another CA refuses the storage with a certificate error, before any request is sent.
    const wrongAgent = new https.Agent({ ca: createCa({ commonName: "not-ours", validityDays: 1 }).certPem, servername: `${fullname}-storage.${ns}.svc` });
    const wrong = new S3Client({ endpoint: `https://127.0.0.1:${s3Port}`, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: pair![0], secretAccessKey: pair![1] }, requestHandler: new NodeHttpHandler({ httpsAgent: wrongAgent }), maxAttempts: 1 });
    await expect(wrong.send(new ListBucketsCommand({}))).rejects.toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    wrong.destroy();
    wrongAgent.destroy();
  });

  it("keeps the storage credentials and the certificates across helm upgrade", async () => {
    const before = {
      credentials: await secret(ns, `${fullname}-storage-credentials`),
      copy: await secret(veleroNs, `${fullname}-storage-credentials`),
      tls: await secret(ns, `${fullname}-webhook-tls`),
    };
    const upgrade = await helm(helmArgs("upgrade", ["--set", "logLevel=debug"]), { kubeconfig: cluster.kubeconfigPath, timeoutMs: 90_000 });
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const { args } = await deploymentArgs(`${fullname}-webhook`);
    expect(args[0]).toBe("webhook"); // the upgrade was applied
    expect((await secret(ns, `${fullname}-storage-credentials`)).data).toEqual(before.credentials.data);
    expect((await secret(veleroNs, `${fullname}-storage-credentials`)).data).toEqual(before.copy.data);
    const tls = await secret(ns, `${fullname}-webhook-tls`);
    expect(tls.data).toEqual(before.tls.data);
    // The upgraded configurations carry the bundle (rendered from the Secret, or re-patched by the leader).
    const bundle = decode(tls.data["ca.crt"]);
    await until("caBundle after the upgrade", async () => ((await caBundles()).every((b) => b === bundle) ? true : undefined), 15_000);
    const created = (await kubeRequest(admin, "POST", `/api/v1/namespaces/${apps}/pods?dryRun=All`, pod("after-upgrade"))).body as { metadata: { annotations?: Record<string, string> } };
    expect(created.metadata.annotations?.["appsnapshots.io/policy"]).toBe(`${apps}/databases`);
  }, 120_000);

  it("rotates the CA and serving certificate with nothing but the chart's RBAC", async () => {
    await webhook?.dispose();
    // Start over with lifetimes of seconds (the running CA would otherwise rotate in months).
    await kubeRequest(admin, "DELETE", `/api/v1/namespaces/${ns}/secrets/${fullname}-webhook-tls`);
    await startWebhook(["--cert-lifetime=6s", "--ca-lifetime=15s", "--ca-publish-delay=1s", "--storage-cert-lifetime=6s"]);
    // The new process may first serve the deleted Secret: its informer's list can come from the apiserver's
    // watch cache before the delete reaches it; the delete event then makes it write a new one.
    const first = decode((await until("the webhook to write its Secret again", () => secret(ns, `${fullname}-webhook-tls`))).data["signer.crt"]);
    // rotate-ca at 10 s (bundle of two CAs), then a serving certificate from the new CA once published.
    const rotated = await until(
      "a CA rotation and a serving certificate from the new CA",
      async () => {
        const data = (await secret(ns, `${fullname}-webhook-tls`)).data;
        const signer = decode(data["signer.crt"]);
        if (signer === first) return undefined;
        const leaf = new X509Certificate(decode(data["tls.crt"]));
        return leaf.checkIssued(new X509Certificate(signer)) ? data : undefined;
      },
      30_000,
      250,
    );
    expect(decode(rotated["ca.crt"]).match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    await until("the rotated bundle in both configurations", async () => ((await caBundles()).every((b) => b === decode(rotated["ca.crt"])) ? true : undefined), 10_000);
    const created = (await kubeRequest(admin, "POST", `/api/v1/namespaces/${apps}/pods?dryRun=All`, pod("after-rotation"))).body as { metadata: { annotations?: Record<string, string> } };
    expect(created.metadata.annotations?.["appsnapshots.io/policy"]).toBe(`${apps}/databases`);
    expect(readFileSync(webhook!.logFile, "utf8")).not.toMatch(/forbidden/i);
  }, 60_000);
});
