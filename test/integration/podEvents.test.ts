import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, KubeConfig, type CoreV1Event, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { kubeRequest } from "../../src/kube/request.js";
import { EventRecorder, eventName, kubeEventSink, type KubeEvent } from "../../src/kube/eventRecorder.js";
import { createLogger } from "../../src/server/logger.js";
import type { WarningOccurrence } from "../../src/admission/warningEvents.js";
import { toolPath } from "../cluster/binaries.js";
import { applyPodMutatingWebhook, webhookProcess, type WebhookProcess } from "../cluster/webhook.js";
import { until } from "../cluster/wait.js";

const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const admissionApi = kc.makeApiClient(AdmissionregistrationV1Api);

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
const ns = `events-${run}`;
const configName = `a-app-snapshots-events-${run}`;
const HASH = "5c7b9d6f4";
let webhook: WebhookProcess;
let replicaSetUid = "";

const template = { metadata: { labels: { app: "web", "pod-template-hash": HASH } }, spec: { containers: [{ name: "web", image: "nginx:1.27" }] } };

/** A pod as the ReplicaSet controller of Deployment `web` would create it, with hand-written hook annotations. */
function deploymentPod(annotations: Record<string, string>): V1Pod {
  return {
    metadata: {
      generateName: `web-${HASH}-`,
      namespace: ns,
      labels: { app: "web", "pod-template-hash": HASH },
      annotations,
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `web-${HASH}`, uid: replicaSetUid, controller: true, blockOwnerDeletion: true }],
    },
    spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
  };
}

/** What `kubectl events --for deployment/web` lists: core Events whose involved object is the Deployment. */
async function deploymentEvents(): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.kind=Deployment,involvedObject.name=web" });
  return list.items;
}

const BAD_COMMAND = { "pre.hook.backup.velero.io/command": '/bin/sh -c "pg_dump app > /dump.sql"' };
const BAD_ON_ERROR = { "pre.hook.backup.velero.io/on-error": "fail" };
const BAD_TIMEOUT = { "pre.hook.backup.velero.io/timeout": "5 minutes" };

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: ns, labels: { "appsnapshots-test": run } } } });
  // No controller-manager runs here: the Deployment and its ReplicaSet are created by hand so their uids exist.
  const deployment = await apps.createNamespacedDeployment({
    namespace: ns,
    body: { metadata: { name: "web" }, spec: { replicas: 0, selector: { matchLabels: { app: "web" } }, template: { ...template, metadata: { labels: { app: "web" } } } } },
  });
  const replicaSet = await apps.createNamespacedReplicaSet({
    namespace: ns,
    body: {
      metadata: {
        name: `web-${HASH}`,
        labels: { app: "web", "pod-template-hash": HASH },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: deployment.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: { replicas: 0, selector: { matchLabels: { app: "web", "pod-template-hash": HASH } }, template },
    },
  });
  replicaSetUid = replicaSet.metadata!.uid!;

  webhook = await webhookProcess({ kubeconfigPath: cluster.kubeconfigPath });
  await webhook.start();
  await applyPodMutatingWebhook(kc, { name: configName, url: `${webhook.url}/mutate/pods`, caPem: webhook.caPem, namespaceSelector: { matchLabels: { "appsnapshots-test": run } } });
  // Canary: the configuration is in effect once a dry-run create comes back with our warning. Dry runs record no Event.
  await until("the webhook to warn on a dry-run pod", async () => {
    const res = await kubeRequest(kc, "POST", `/api/v1/namespaces/${ns}/pods?dryRun=All`, deploymentPod(BAD_TIMEOUT));
    return res.warnings.some((w) => w.includes("is not a Go duration")) ? true : undefined;
  });
}, 60_000);

afterAll(async () => {
  await admissionApi.deleteMutatingWebhookConfiguration({ name: configName }).catch(() => undefined);
  await webhook?.dispose();
});

describe("pod warnings recorded as Events on the workload", () => {
  it("records a Deployment pod's warning as one Warning Event on the Deployment, and a repeat adds none", async () => {
    await core.createNamespacedPod({ namespace: ns, body: deploymentPod(BAD_COMMAND) });
    const [first] = await until("an Event on Deployment web", async () => {
      const events = await deploymentEvents();
      return events.length > 0 ? events : undefined;
    });
    expect(first).toMatchObject({
      type: "Warning",
      reason: "BackupAnnotations",
      action: "Admit",
      reportingComponent: "appsnapshots.io/webhook",
      involvedObject: { apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: ns },
    });
    expect(first!.message).toMatch(/^pre\.hook\.backup\.velero\.io\/command has spaces but is not a JSON array/);

    // The same warning from a second pod of the same Deployment adds no Event. A third pod with a
    // different warning is the barrier: once its Event is there, the second pod's would be too.
    await core.createNamespacedPod({ namespace: ns, body: deploymentPod(BAD_COMMAND) });
    await core.createNamespacedPod({ namespace: ns, body: deploymentPod(BAD_ON_ERROR) });
    const events = await until("the Event of the third pod", async () => {
      const all = await deploymentEvents();
      return all.some((e) => e.message?.includes("is neither Continue nor Fail")) ? all : undefined;
    });
    expect(events.map((e) => e.message!.split(":")[0]).sort()).toEqual(["pre.hook.backup.velero.io/command has spaces but is not a JSON array", "pre.hook.backup.velero.io/on-error"]);
    // The dry-run canary recorded nothing.
    expect(events.some((e) => e.message?.includes("is not a Go duration"))).toBe(false);
    // Both pods were created: the warnings never blocked or changed admission.
    expect((await core.listNamespacedPod({ namespace: ns })).items).toHaveLength(3);
  });

  it("shows them to a person with kubectl events --for, and logs each text at info", () => {
    const out = spawnSync(toolPath("kubectl"), ["--kubeconfig", cluster.kubeconfigPath, "events", "-n", ns, "--for", "deployment/web"], { encoding: "utf8" });
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/Warning\s+BackupAnnotations\s+Deployment\/web\s+pre\.hook\.backup\.velero\.io\/command has spaces/);
    const infos = readFileSync(webhook.logFile, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; msg: string; object?: string })
      .filter((l) => l.level === 30 && l.object === "Deployment/web");
    expect(infos.filter((l) => l.msg.includes("is not a JSON array"))).toHaveLength(1);
    expect(infos.filter((l) => l.msg.includes("is neither Continue nor Fail"))).toHaveLength(1);
  });
});

describe("the Event sink against the real apiserver", () => {
  it("creates, patches the series count, and creates again (with the count) once the Event is gone", async () => {
    let now = Date.now();
    const WINDOW = 60_000;
    const recorder = new EventRecorder({
      sink: kubeEventSink(kc),
      log: createLogger({ level: "silent", pretty: false }),
      reportingController: "appsnapshots.io/webhook",
      reportingInstance: "integration-test",
      now: () => now,
      windowMs: WINDOW,
      onWrite: (result) => writes.push(result),
    });
    // Each step waits for the recorder's own write to finish, not only for the apiserver to show it: an
    // occurrence recorded while the previous write's answer is still on its way waits for a later flush.
    const writes: string[] = [];
    const written = (what: string, count: number) => until(what, () => Promise.resolve(writes.length >= count ? writes.slice() : undefined));
    const occurrence: WarningOccurrence = {
      namespace: ns,
      regarding: { apiVersion: "apps/v1", kind: "ReplicaSet", name: `web-${HASH}`, namespace: ns, uid: replicaSetUid },
      subject: `ReplicaSet/web-${HASH}`,
      reason: "BackupAnnotations",
      action: "Admit",
      note: "series test",
    };
    const path = `/apis/events.k8s.io/v1/namespaces/${ns}/events/${eventName(occurrence)!}`;
    const read = async () => (await kubeRequest(kc, "GET", path)).body as KubeEvent;

    recorder.record(occurrence);
    expect(await written("the Event created", 1)).toEqual(["created"]);
    expect((await read()).series).toBeUndefined();
    now += WINDOW;
    recorder.record(occurrence);
    expect(await written("the series patched", 2)).toEqual(["created", "updated"]);
    expect((await read()).series?.count).toBe(2);
    expect((await read()).note).toBe("series test");

    await kubeRequest(kc, "DELETE", path);
    now += WINDOW;
    recorder.record(occurrence);
    expect(await written("the Event created again", 3)).toEqual(["created", "updated", "created"]);
    expect((await read()).series?.count).toBe(3);
  });
});
