// Velero of the KOTS era on the real node, and the way from it to today's (issue 16, scenarios B and C), on one
// node in order, since C moves B's backups:
// - B.1: Velero 1.16 with restic file-system backup through our chart's S3 endpoint, where KOTS put MinIO in front
//   of an NFS or hostPath volume.
// - B.2: the same Velero with local-volume-provider, played by the stand-in plugin (test/velero/tools-kots/
//   lvp-standin), whose file-server sidecar is our image set as LVP's `fileserverImage`: restic writes into the
//   mounted folder, `velero backup logs/download` go through our signed-URL server, also via a Service and a
//   port-forward.
// - C: Velero upgraded to 1.18 in place, the LVP location replaced by an S3 location of the same name over the same
//   folder (docs/migration.md, step by step): the LVP-era restic backups sync and restore, new backups use kopia.
import { chownSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { AppsV1Api, type V1Deployment } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pinnedVersions, veleroPaths } from "../cluster/binaries.js";
import { run } from "../cluster/node/host.js";
import { lvpStandInImage, veleroImage } from "../cluster/node/veleroImages.js";
import { until } from "../cluster/wait.js";
import { RELEASE } from "./chartInstall.js";
import { withoutNode } from "./gate.js";
import { portForward } from "./portForward.js";
import { APP, kotsStack, VELERO_NS, VeleroScenario } from "./veleroScenario.js";

const IMAGE = "ghcr.io/app-snapshots/app-snapshots:0.1.0";
/** The LVP location's bucket: the folder's name under LVP's mount root, and later the S3 bucket of that folder. */
const LVP_BUCKET = "lvp-snapshots";
const LVP_ROOT = "/var/velero-local-volume-provider";
const LOCATION = "default-fs";

let scenario: VeleroScenario | undefined;

const started = () => {
  if (!scenario) throw new Error("the real node with Velero did not start");
  return scenario;
};

beforeAll(async () => {
  if (withoutNode) return;
  // Velero 1.18's image is imported up front for scenario C's upgrade.
  scenario = await VeleroScenario.start(kotsStack(), [veleroImage().archive]);
}, 600_000);

afterAll(async () => {
  if (scenario) console.log(`[velero-kots] timings (s): ${JSON.stringify(scenario.timings)}`);
  await scenario?.stop();
});

/** The Deployment rolled out: every replica updated, available, and the old pods gone. */
async function rolledOut(on: VeleroScenario, what: string, check: (deployment: V1Deployment) => boolean): Promise<void> {
  const apps = on.node.kubeConfig.makeApiClient(AppsV1Api);
  await until(what, async () => {
    const d = await apps.readNamespacedDeployment({ name: "velero", namespace: VELERO_NS });
    const s = d.status;
    const done = s?.observedGeneration === d.metadata?.generation && s?.updatedReplicas === 1 && s?.readyReplicas === 1 && (s?.replicas ?? 0) === 1;
    return done && check(d) ? true : undefined;
  }, 240_000, 1_000);
}

function locationPhase(on: VeleroScenario, name: string): string {
  const location = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backupstoragelocation", name, "-o", "json"])) as { status?: { phase?: string } };
  return location.status?.phase ?? "";
}

/** A DownloadRequest for `backup`'s log, as `velero backup logs` makes one: the signed URL Velero answers with. */
async function logUrl(on: VeleroScenario, backup: string, name: string): Promise<string> {
  on.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "velero.io/v1", kind: "DownloadRequest", metadata: { name, namespace: VELERO_NS }, spec: { target: { kind: "BackupLog", name: backup } } }));
  return until("the DownloadRequest's URL", () => {
    const request = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "downloadrequest", name, "-o", "json"])) as { status?: { downloadURL?: string } };
    return Promise.resolve(request.status?.downloadURL || undefined);
  }, 60_000, 500);
}

async function fetchBytes(url: string): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

describe.skipIf(withoutNode)("Velero 1.16 of the KOTS era, then 1.18, on the real node", () => {
  it("B.1: backs up the restricted app with restic through our S3 endpoint, hooks run, and restores it after the namespace is gone, data equal", async () => {
    const on = started();
    expect(on.velero(["version", "--client-only"])).toContain("Version: v1.16.");
    const before = await on.createApp();
    on.backUp("b1", "restic");
    // restic's repository is in our store, beside Velero's objects.
    expect(on.kubectl(["-n", "velero", "get", "backuprepositories", "-o", "jsonpath={.items[*].spec.repositoryType}"])).toBe("restic");
    const pod = await on.deleteAndRestore("b1", "r1");
    expect(pod.spec!.initContainers![0]!.name).toBe("restore-wait");
    expect(on.appData()).toEqual(before);
    await until("the post-restore hook's file", () => Promise.resolve(on.exec("cat /cache/restored-from-dump.txt 2>/dev/null || true").trim() === "20000" ? true : undefined), 60_000);
  });

  it("B.2: with local-volume-provider (the stand-in) and our image as its file server: restic backup, logs and download through our signed-URL server, also via a Service and a port-forward, restore data equal", async () => {
    const on = started();
    const before = on.appData();
    // The host folder LVP mounts (it must exist: hostPath type Directory), inside our chart's storage volume, so
    // that scenario C can serve the same files as an S3 bucket. Velero's server runs as 65532, like our storage.
    const folder = path.join(on.storeRoot, LVP_BUCKET);
    mkdirSync(folder);
    chownSync(folder, 65532, 65532);
    // LVP's plugin ConfigMap as KOTS writes it, naming our image as the file server.
    on.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "local-volume-provider-config", namespace: VELERO_NS, labels: { "velero.io/plugin-config": "", "replicated.com/hostpath": "ObjectStore" } },
      data: { fileserverImage: IMAGE },
    }));
    // The location KOTS makes for a hostPath destination without MinIO (kots-and-lvp.md 2.2, 3).
    const since = Date.now();
    on.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "velero.io/v1",
      kind: "BackupStorageLocation",
      metadata: { name: LOCATION, namespace: VELERO_NS },
      spec: { provider: "replicated.com/hostpath", objectStorage: { bucket: LVP_BUCKET }, config: { path: folder, resticRepoPrefix: `${LVP_ROOT}/${LVP_BUCKET}/restic` } },
    }));
    // The plugin's Init declares the volume and the sidecar; Velero rolls onto them and finds the location.
    await rolledOut(on, "Velero rolled with LVP's file-server sidecar", (d) => d.spec!.template.spec!.containers.some((c) => c.name === "local-volume-provider" && c.image === IMAGE));
    await until(`location ${LOCATION} Available`, () => Promise.resolve(locationPhase(on, LOCATION) === "Available" ? true : undefined), 180_000, 1_000);
    on.timings["LVP location to Available"] = (Date.now() - since) / 1000;
    const agents = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "daemonset", "node-agent", "-o", "json"])) as { spec: { template: { spec: { containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string }> }> } } } };
    expect(agents.spec.template.spec.containers[0]!.volumeMounts).toContainEqual({ name: LVP_BUCKET, mountPath: `${LVP_ROOT}/${LVP_BUCKET}` });
    await until("node-agent rolled with the LVP mount", () => {
      const ds = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "daemonset", "node-agent", "-o", "json"])) as { metadata: { generation: number }; status: { observedGeneration?: number; updatedNumberScheduled?: number; numberReady?: number } };
      return Promise.resolve(ds.status.observedGeneration === ds.metadata.generation && ds.status.updatedNumberScheduled === 1 && ds.status.numberReady === 1 ? true : undefined);
    }, 180_000, 1_000);

    on.backUp("b2", "restic", LOCATION);
    // Velero's objects and restic's repository as LVP lays them out: plain files in the folder.
    expect(existsSync(path.join(folder, "backups", "b2", "b2.tar.gz"))).toBe(true);
    expect(existsSync(path.join(folder, "restic", APP, "config"))).toBe(true);
    const pvbs = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "podvolumebackups", "-l", "velero.io/backup-name=b2", "-o", "json"])) as { items: Array<{ spec: { repoIdentifier: string } }> };
    expect(new Set(pvbs.items.map((p) => p.spec.repoIdentifier))).toEqual(new Set([`${LVP_ROOT}/${LVP_BUCKET}/restic/${APP}`]));

    // The Velero CLI on the host fetches the signed URLs, which name the Velero pod's IP and port 3000.
    expect(on.velero(["backup", "logs", "b2", ...on.cacert])).toMatch(/Backed up a total of \d+ items/);
    const file = path.join(on.folder("app-snapshots-velero-download-"), "b2.tar.gz");
    on.velero(["backup", "download", "b2", "-o", file, ...on.cacert]);
    expect(run("tar", ["-tzf", file])).toMatch(/resources\/pods\/namespaces\/shop\/db\.json/);
    expect(on.velero(["backup", "describe", "b2", "--details", "--colorized=false", ...on.cacert])).toMatch(/Phase:\s+Completed[\s\S]*shop\/db: cache, data/);

    // The same URL through a Service and a port-forward, which LVP's own server refuses (LVP#12): our server
    // accepts the host the URL was issued for, learnt from the pod's addresses (the sidecar has no POD_IP).
    const url = new URL(await logUrl(on, "b2", "b2-log"));
    expect(url.port).toBe("3000");
    const direct = await fetchBytes(url.href);
    expect(direct.status).toBe(200);
    expect(direct.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    on.kubectl(["-n", VELERO_NS, "create", "service", "clusterip", "lvp-files", "--tcp=3000:3000"]);
    on.kubectl(["-n", VELERO_NS, "set", "selector", "service", "lvp-files", "deploy=velero"]);
    const serviceIp = on.kubectl(["-n", VELERO_NS, "get", "service", "lvp-files", "-o", "jsonpath={.spec.clusterIP}"]);
    const viaService = await until("the log through the Service", async () => {
      const got = await fetchBytes(Object.assign(new URL(url.href), { host: `${serviceIp}:3000` }).href).catch(() => undefined);
      return got?.status === 200 ? got : undefined;
    }, 60_000, 500);
    expect(viaService.body.equals(direct.body)).toBe(true);
    const forward = await portForward(on.node.kubeconfigPath, VELERO_NS, "svc/lvp-files", 3000);
    try {
      const local = Object.assign(new URL(url.href), { host: `127.0.0.1:${forward.port}` });
      const viaForward = await fetchBytes(local.href);
      expect(viaForward.status).toBe(200);
      expect(viaForward.body.equals(direct.body)).toBe(true);
      // A changed expiry breaks the signature.
      local.searchParams.set("expires", "2099-01-01T00:00:00.000Z");
      expect((await fetchBytes(local.href)).status).toBe(403);
    } finally {
      forward.close();
    }

    const pod = await on.deleteAndRestore("b2", "r2");
    expect(pod.spec!.initContainers![0]!.name).toBe("restore-wait");
    expect(on.appData()).toEqual(before);
  });

  it("C: after Velero moves to 1.18 and the LVP location becomes an S3 location over the same folder, the LVP-era restic backups sync and restore, data equal, and new backups use kopia", async () => {
    const on = started();
    const before = on.appData();
    const since = Date.now();
    const folder = path.join(on.storeRoot, LVP_BUCKET);
    const cli = veleroPaths().velero;
    const v18 = veleroImage();
    const migrate = (text: string) => text.replaceAll("<velero-image>", v18.ref).replaceAll("<bucket>", LVP_BUCKET).replaceAll("<location>", LOCATION);
    // docs/migration.md's steps, as written there, with the values of this cluster.
    const steps = migrationSteps();
    // 1. Velero's own upgrade (its upgrade-to-1.17 page): the CRDs, restic backups off, the images.
    on.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], run(cli, ["install", "--crds-only", "--dry-run", "-o", "yaml"]));
    on.kubectl(["apply", "-f", "-"], on.kubectl(["-n", VELERO_NS, "get", "deploy", "velero", "-o", "json"]).replaceAll('"--uploader-type=restic"', '"--uploader-type=kopia"'));
    on.kubectl(["-n", VELERO_NS, "set", "image", "deployment/velero", `velero=${v18.ref}`]);
    on.kubectl(["-n", VELERO_NS, "set", "image", "daemonset/node-agent", `node-agent=${v18.ref}`]);
    // 2. LVP out: its plugin, its sidecar and its mount (the files stay in the folder).
    run(cli, ["--kubeconfig", on.node.kubeconfigPath, "--namespace", VELERO_NS, "plugin", "remove", lvpStandInImage().ref]);
    on.kubectl(["-n", VELERO_NS, "patch", "deployment", "velero", "--type", "strategic", "-p", migrate(steps.deployment)]);
    on.kubectl(["-n", VELERO_NS, "patch", "daemonset", "node-agent", "--type", "strategic", "-p", migrate(steps.daemonset)]);
    // 3. The files node-agent's restic wrote as root, readable by the storage's user.
    run("chown", ["-R", "65532:65532", folder]);
    // 4. The location: same name, provider aws, our S3 endpoint, the same folder as its bucket; repositories reset.
    const chartLocation = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backupstoragelocation", RELEASE, "-o", "json"])) as { spec: { objectStorage: { caCert?: string }; config: Record<string, string>; credential: unknown } };
    on.kubectl(["-n", VELERO_NS, "delete", "backupstoragelocation", LOCATION]);
    on.kubectl(["-n", VELERO_NS, "delete", "backuprepositories", "-l", `velero.io/storage-location=${LOCATION}`]);
    // The cluster's record of b2 goes too, so that only the storage can bring it back (as on a new cluster).
    on.kubectl(["-n", VELERO_NS, "delete", "backup", "b2"]);
    on.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "velero.io/v1",
      kind: "BackupStorageLocation",
      metadata: { name: LOCATION, namespace: VELERO_NS },
      spec: { provider: "aws", objectStorage: { bucket: LVP_BUCKET, caCert: chartLocation.spec.objectStorage.caCert }, config: chartLocation.spec.config, credential: chartLocation.spec.credential },
    }));
    await rolledOut(on, "Velero 1.18 rolled without LVP", (d) => d.spec!.template.spec!.containers.every((c) => c.name !== "local-volume-provider") && d.spec!.template.spec!.containers[0]!.image === v18.ref);
    on.cli = cli;
    expect(on.velero(["version", "--timeout", "30s"])).toMatch(/Server:\s*\n\s*Version: v1\.18\./);
    await until(`location ${LOCATION} Available on S3`, () => Promise.resolve(locationPhase(on, LOCATION) === "Available" ? true : undefined), 180_000, 1_000);
    // Backup sync brings b2 back from the folder, with its restic PodVolumeBackups.
    await until("b2 synced from the storage", () => {
      const got = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "backups", "-o", "json"])) as { items: Array<{ metadata: { name: string }; status?: { phase?: string } }> };
      return Promise.resolve(got.items.some((b) => b.metadata.name === "b2" && b.status?.phase === "Completed") ? true : undefined);
    }, 180_000, 1_000);
    await until("b2's PodVolumeBackups synced", () => {
      const got = JSON.parse(on.kubectl(["-n", VELERO_NS, "get", "podvolumebackups", "-l", "velero.io/backup-name=b2", "-o", "json"])) as { items: Array<{ spec: { uploaderType?: string } }> };
      return Promise.resolve(got.items.length === 2 && got.items.every((p) => (p.spec.uploaderType ?? "restic") === "restic") ? true : undefined);
    }, 120_000, 1_000);
    expect(on.velero(["backup", "get"])).toMatch(new RegExp(`b2\\s+Completed[\\s\\S]*${LOCATION}`));
    on.timings["migration to b2 synced"] = (Date.now() - since) / 1000;

    const pod = await on.deleteAndRestore("b2", "r3");
    expect(pod.spec!.initContainers![0]!.name).toBe("restore-wait");
    expect(on.appData()).toEqual(before);
    // The restic repository was reached through S3 this time, at the same folder.
    expect(on.kubectl(["-n", VELERO_NS, "get", "backuprepositories", "-l", `velero.io/storage-location=${LOCATION}`, "-o", "jsonpath={.items[*].spec.resticIdentifier}"])).toContain(`/${LVP_BUCKET}/restic/${APP}`);

    on.backUp("b3", "kopia", LOCATION);
    expect(existsSync(path.join(folder, "kopia", APP))).toBe(true);
    expect(pinnedVersions().VELERO).toMatch(/^v1\.18\./);
  });
});

/** The strategic-merge patches docs/migration.md gives for removing LVP's sidecar and mounts, read from the doc itself. */
function migrationSteps(): { deployment: string; daemonset: string } {
  const doc = readFileSync(path.join(import.meta.dirname, "..", "..", "docs", "migration.md"), "utf8");
  const patch = (target: string) => {
    const found = new RegExp(`kubectl -n velero patch ${target} --type strategic -p '([^']+)'`).exec(doc)?.[1];
    if (!found) throw new Error(`docs/migration.md has no 'kubectl -n velero patch ${target} --type strategic -p' step`);
    return found;
  };
  return { deployment: patch("deployment velero"), daemonset: patch("daemonset node-agent") };
}
