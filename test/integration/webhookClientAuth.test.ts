import https from "node:https";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createCa, issueCertificate } from "../../src/certs/authority.js";
import { KubeRequestError, kubeRequest } from "../../src/kube/request.js";
import { startControlPlane, type ControlPlane } from "../cluster/controlPlane.js";
import { installAppSnapshotsCrds, installVeleroCrds } from "../cluster/crds.js";
import { freePort } from "../cluster/processes.js";
import { applyVeleroValidatingWebhook, webhookProcess, type WebhookProcess } from "../cluster/webhook.js";

/**
 * The webhook requires the apiserver's client certificate (--client-ca, --client-name), and a real
 * kube-apiserver presents one configured the way docs/security.md says: --admission-control-config-file
 * naming a kubeconfig whose user entry, named after the webhook's host:port, carries the certificate.
 * Its own control plane: the flag is read at start-up.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-client-auth-"));
const clientCa = createCa({ commonName: "webhook-client-ca", validityDays: 1 });
const apiserverClient = issueCertificate(clientCa, { commonName: "kube-apiserver-webhook-client", usage: "client", validityDays: 1 });
const kubelet = issueCertificate(clientCa, { commonName: "system:node:node-1", usage: "client", validityDays: 1 });
let plane: ControlPlane;
let webhook: WebhookProcess;

beforeAll(async () => {
  const port = await freePort();
  const file = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    return path.join(dir, name);
  };
  const kubeconfig = file(
    "webhook-kubeconfig.yaml",
    stringify({
      apiVersion: "v1",
      kind: "Config",
      // The user is matched by the webhook's host: <service>.<namespace>.svc for a Service on 443, host:port for a URL.
      users: [{ name: `127.0.0.1:${port}`, user: { "client-certificate-data": Buffer.from(apiserverClient.certPem).toString("base64"), "client-key-data": Buffer.from(apiserverClient.keyPem).toString("base64") } }],
    }),
  );
  const webhookAdmission = { apiVersion: "apiserver.config.k8s.io/v1", kind: "WebhookAdmissionConfiguration", kubeConfigFile: kubeconfig };
  const admissionConfig = file(
    "admission.yaml",
    stringify({
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "AdmissionConfiguration",
      plugins: [
        { name: "ValidatingAdmissionWebhook", configuration: webhookAdmission },
        { name: "MutatingAdmissionWebhook", configuration: webhookAdmission },
      ],
    }),
  );
  plane = await startControlPlane({ apiserverArgs: [`--admission-control-config-file=${admissionConfig}`] });
  await installVeleroCrds(plane.kubeConfig);
  await installAppSnapshotsCrds(plane.kubeConfig);
  const caFile = file("client-ca.crt", clientCa.certPem);
  webhook = await webhookProcess({ kubeconfigPath: plane.kubeconfigPath, namespace: "app-snapshots", port, extraArgs: [`--client-ca=${caFile}`, "--client-name=kube-apiserver-webhook-client"] });
  await webhook.start();
  await kubeRequest(plane.kubeConfig, "POST", "/api/v1/namespaces", { metadata: { name: "apps" } });
  await applyVeleroValidatingWebhook(plane.kubeConfig, { name: "client-auth-velero", url: `${webhook.url}/validate/velero`, caPem: webhook.caPem });
}, 120_000);

afterAll(async () => {
  await webhook?.dispose();
  await plane?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A POST straight to the webhook, as a pod on the network would send it. */
function direct(cert?: { certPem: string; keyPem: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${webhook.url}/validate/velero`, { method: "POST", ca: webhook.caPem, headers: { "content-type": "application/json" }, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: {} }));
  });
}

describe("the webhook with the apiserver's client certificate required", () => {
  it("judges the apiserver's requests: it presents the certificate from its admission config", async () => {
    const err = await kubeRequest(plane.kubeConfig, "POST", "/apis/velero.io/v1/namespaces/apps/backups?dryRun=All", {
      apiVersion: "velero.io/v1",
      kind: "Backup",
      metadata: { name: "b1" },
      spec: { storageLocation: "nope" },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KubeRequestError);
    // The webhook's own verdict, not a failed call.
    expect((err as KubeRequestError).message).toContain("spec.storageLocation: BackupStorageLocation apps/nope does not exist");
  });

  it("refuses anyone else reaching the port: no certificate 401, another name from the same CA 403, before any admission code", async () => {
    const none = await direct();
    const other = await direct(kubelet);
    expect([none.status, other.status]).toEqual([401, 403]);
    expect(JSON.parse(none.body)).toEqual({ message: "a client certificate signed by the webhook's client CA is required (no client certificate)" });
    expect(JSON.parse(other.body)).toEqual({ message: 'client certificate for "system:node:node-1" is not allowed to call this webhook' });
    // With the right certificate the same body reaches admission, which answers its own 400.
    expect((await direct(apiserverClient)).status).toBe(400);
  });
});
