// What the real node's Velero scenarios share (issue 16): a node with our image and a Velero stack's images, our
// chart with hostPath storage, Velero installed as users install it (`velero install --dry-run -o yaml`, applied)
// with node-agent, the BackupStorageLocation as our chart's NOTES print it, and the app every scenario backs up: a
// restricted busybox "database" with a PVC and an emptyDir, under a SnapshotPolicy with hooks.
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import { expect } from "vitest";
import { cacheDir, pinnedVersions, toolPath, veleroPaths } from "../cluster/binaries.js";
import { run } from "../cluster/node/host.js";
import { runPath } from "../cluster/node/layout.js";
import { startRealNode, sweepHost, type RealNode } from "../cluster/node/realNode.js";
import { awsPluginImage, lvpStandInImage, veleroImage } from "../cluster/node/veleroImages.js";
import { until } from "../cluster/wait.js";
import { chartDir } from "../chart/helm.js";
import { locationCommandIn, runNotesCommand } from "../chart/notes.js";
import { helmOnNode, imageArchive, installChart, NAMESPACE, RELEASE, servedCertificate, storageCaBundle } from "./chartInstall.js";

export const APP = "shop";
export const VELERO_NS = "velero";

/** A Velero release as pods: its images, the CLI that installs and drives it, and its install flags. */
export interface VeleroStack {
  velero: { ref: string; archive: string };
  plugins: Array<{ ref: string; archive: string }>;
  cli: string;
  installArgs: string[];
  /** `velero install --kubelet-root-dir` exists (1.17+); before, node-agent's hostPath volumes are edited as Velero's docs say. */
  kubeletRootDirFlag: boolean;
}

/** Today's: Velero VELERO with kopia (its default uploader) and velero-plugin-for-aws VELERO_AWS_PLUGIN. */
export function currentStack(): VeleroStack {
  return { velero: veleroImage(), plugins: [awsPluginImage()], cli: veleroPaths().velero, installArgs: [], kubeletRootDirFlag: true };
}

/**
 * The KOTS era's: Velero VELERO_KOTS with restic file-system backup (test/velero/tools-kots), with the AWS plugin
 * and the local-volume-provider stand-in, as KOTS installs them for S3-compatible and NFS/hostPath destinations.
 */
export function kotsStack(): VeleroStack {
  const versions = pinnedVersions();
  return {
    velero: veleroImage(versions.VELERO_KOTS),
    plugins: [awsPluginImage(versions.VELERO_KOTS_AWS_PLUGIN), lvpStandInImage()],
    cli: path.join(cacheDir, `velero-image-${versions.VELERO_KOTS!}`, "velero"),
    installArgs: ["--uploader-type=restic"],
    kubeletRootDirFlag: false,
  };
}

const restricted = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } };

export class VeleroScenario {
  readonly timings: Record<string, number>;
  private readonly folders: string[] = [];
  /** The chart's storage volume on the host. */
  readonly storeRoot: string;

  private constructor(
    readonly node: RealNode,
    readonly stack: VeleroStack,
  ) {
    this.timings = { ...node.timings };
    this.cli = stack.cli;
    this.storeRoot = this.folder("app-snapshots-velero-store-", 65532);
  }

  /** Starts the node, installs our chart and Velero, and waits for the location to be Available; `laterImages` are for upgrades. */
  static async start(stack: VeleroStack, laterImages: string[] = []): Promise<VeleroScenario> {
    await sweepHost();
    const archives = [imageArchive(), stack.velero.archive, ...stack.plugins.map((plugin) => plugin.archive), ...laterImages];
    const node = await startRealNode({ log: (line) => console.log(`[real-node] ${line}`), imageArchives: archives });
    const scenario = new VeleroScenario(node, stack);
    try {
      await scenario.install();
    } catch (err) {
      await scenario.stop();
      throw err;
    }
    return scenario;
  }

  kubectl(args: string[], input?: string): string {
    return run(toolPath("kubectl"), ["--kubeconfig", this.node.kubeconfigPath, ...args], input);
  }

  /** The Velero CLI in use (an upgrade moves to the new release's). */
  cli: string;

  /**
   * `--cacert` with the storage's CA, for the commands that fetch from the storage (describe, logs, download) of a
   * CLI before 1.17; from 1.17 the CLI takes the location's caCert itself (pkg/cmd/cli/backup/logs.go 82).
   */
  cacert: string[] = [];

  velero(args: string[]): string {
    return run(this.cli, ["--kubeconfig", this.node.kubeconfigPath, "--namespace", VELERO_NS, ...args]);
  }

  exec(script: string): string {
    return this.kubectl(["-n", APP, "exec", "db", "-c", "db", "--", "sh", "-c", script]);
  }

  /** A host folder removed on stop. */
  folder(prefix: string, owner?: number): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.folders.push(dir);
    if (owner !== undefined) chownSync(dir, owner, owner);
    return dir;
  }

  async stop(): Promise<void> {
    await this.node.stop();
    for (const dir of this.folders) rmSync(dir, { recursive: true, force: true });
  }

  private async install(): Promise<void> {
    const { node } = this;
    const core = node.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: VELERO_NS } } });
    await installChart(node.kubeconfigPath, this.storeRoot);
    // velero backup logs/download run on the host, which reaches Service IPs (kube-proxy) but not their DNS names,
    // so the public URL is the Service IP, which the storage's certificate must then name too.
    const storageIp = (await core.readNamespacedService({ name: `${RELEASE}-storage`, namespace: NAMESPACE })).spec!.clusterIP!;
    const publicUrl = ["--set", `storage.s3.publicUrl=https://${storageIp}:9000`, "--set", `storage.tls.extraIpAddresses={${storageIp}}`];
    await helmOnNode(node.kubeconfigPath, ["upgrade", RELEASE, chartDir, "--namespace", NAMESPACE, "--reuse-values", ...publicUrl, "--wait"]);
    const ca = await storageCaBundle(node.kubeConfig);
    const caFile = path.join(this.folder("app-snapshots-storage-ca-"), "ca.crt");
    writeFileSync(caFile, ca);
    this.cacert = ["--cacert", caFile];
    await until(`the storage's certificate naming ${storageIp}`, () => servedCertificate(storageIp, 9000, { ca }), 120_000, 1_000);

    const since = Date.now();
    const kubeletRoot = runPath("kubelet");
    const manifests = run(this.stack.cli, [
      "install",
      `--kubeconfig=${node.kubeconfigPath}`,
      `--image=${this.stack.velero.ref}`,
      `--plugins=${this.stack.plugins.map((plugin) => plugin.ref).join(",")}`,
      "--no-default-backup-location",
      "--no-secret",
      "--use-volume-snapshots=false",
      "--use-node-agent",
      ...(this.stack.kubeletRootDirFlag ? [`--kubelet-root-dir=${kubeletRoot}`] : []),
      ...this.stack.installArgs,
      "--dry-run",
      "-o",
      "yaml",
    ]);
    // Velero 1.16 prints its restic deprecation warning on stdout, before the YAML: dropped, as a user piping it to
    // kubectl apply must. The node's kubelet keeps pods under its run dir, not /var/lib/kubelet.
    const yaml = manifests.slice(Math.max(0, manifests.search(/^apiVersion:/m)));
    this.kubectl(["apply", "--server-side", "-f", "-"], this.stack.kubeletRootDirFlag ? yaml : yaml.replaceAll("path: /var/lib/kubelet/", `path: ${kubeletRoot}/`));
    const apps = node.kubeConfig.makeApiClient(AppsV1Api);
    await until("Velero and node-agent Ready", async () => {
      const deployment = await apps.readNamespacedDeployment({ name: "velero", namespace: VELERO_NS });
      const agents = await apps.readNamespacedDaemonSet({ name: "node-agent", namespace: VELERO_NS });
      return deployment.status?.readyReplicas === 1 && agents.status?.numberReady === 1 ? true : undefined;
    }, 180_000, 1_000);
    this.timings["velero install to Ready"] = (Date.now() - since) / 1000;

    // The BackupStorageLocation command exactly as the chart's NOTES print it, run by bash with kubectl (its caCert
    // comes from the storage's Secret through $(kubectl …)), then made the default as they suggest.
    const notes = (await helmOnNode(node.kubeconfigPath, ["get", "notes", RELEASE, "--namespace", NAMESPACE])).stdout;
    runNotesCommand(locationCommandIn(notes), { binary: toolPath("kubectl") }, { KUBECONFIG: node.kubeconfigPath });
    this.kubectl(["-n", VELERO_NS, "patch", "backupstoragelocation", RELEASE, "--type", "merge", "-p", '{"spec":{"default":true}}']);
    const objects = node.kubeConfig.makeApiClient(CustomObjectsApi);
    await until("the BackupStorageLocation Available", async () => {
      const location = (await objects.getNamespacedCustomObject({ group: "velero.io", version: "v1", namespace: VELERO_NS, plural: "backupstoragelocations", name: RELEASE })) as { status?: { phase?: string } };
      return location.status?.phase === "Available" ? true : undefined;
    }, 120_000, 1_000);
  }

  /**
   * A local PersistentVolume reserved for the claim shop/data: the node has no dynamic provisioner. Not hostPath:
   * Velero's file-system backup skips volumes whose PersistentVolume is hostPath (pkg/podvolume, isHostPathVolume).
   */
  provisionVolume(name: string): void {
    const dir = this.folder(`app-snapshots-velero-pv-${name}-`, 1000);
    chmodSync(dir, 0o770);
    const volume = {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "",
        claimRef: { namespace: APP, name: "data" },
        local: { path: dir },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["localhost"] }] }] } },
      },
    };
    this.kubectl(["apply", "-f", "-"], JSON.stringify(volume));
  }

  /** The app: a busybox "database" as a restricted pod, its data on a PVC and a cache on an emptyDir. */
  appPod(): V1Pod {
    return {
      metadata: { name: "db", namespace: APP, labels: { app: "db" } },
      spec: {
        securityContext: { fsGroup: 1000 },
        // Its shell is PID 1 and ignores SIGTERM: without this, deleting the namespace waits out the default 30 s.
        terminationGracePeriodSeconds: 1,
        volumes: [
          { name: "data", persistentVolumeClaim: { claimName: "data" } },
          { name: "cache", emptyDir: {} },
        ],
        containers: [
          {
            name: "db",
            image: this.node.images.busybox,
            imagePullPolicy: "Never",
            command: ["sh", "-c", "test -f /data/table.txt || seq 1 20000 > /data/table.txt; echo warm > /cache/hot.txt; exec sleep 100000"],
            volumeMounts: [
              { name: "data", mountPath: "/data" },
              { name: "cache", mountPath: "/cache" },
            ],
            securityContext: restricted,
          },
        ],
      },
    };
  }

  /**
   * Namespace shop (Pod Security "restricted"), its SnapshotPolicy (all volumes; a pre-backup dump hook and a
   * post-restore hook), the claim and the app, Running with its data; `beforePod` runs just before the pod is made.
   * Returns what the restore must give back.
   */
  async createApp(beforePod: () => Promise<void> = () => Promise.resolve()): Promise<{ table: string; hot: string }> {
    const core = this.node.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: APP, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } });
    this.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "appsnapshots.io/v1alpha1",
        kind: "SnapshotPolicy",
        metadata: { name: "db", namespace: APP },
        spec: {
          podSelector: { matchLabels: { app: "db" } },
          volumes: { include: ["*"] },
          hooks: {
            preBackup: { command: ["sh", "-c", "wc -l < /data/table.txt > /data/dump.txt"] },
            postRestore: { command: ["sh", "-c", "cp /data/dump.txt /cache/restored-from-dump.txt"], waitForReady: true },
          },
        },
      }),
    );
    this.provisionVolume("shop-data");
    await core.createNamespacedPersistentVolumeClaim({
      namespace: APP,
      body: { metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: "", volumeName: "shop-data", resources: { requests: { storage: "1Gi" } } } },
    });
    // The webhook reads policies from a watch: a pod created before it saw the policy is not annotated.
    const annotated = await until("the app pod annotated by our webhook", async () => {
      const pod = await core.createNamespacedPod({ namespace: APP, body: this.appPod(), dryRun: "All" });
      return pod.metadata?.annotations?.["backup.velero.io/backup-volumes"] ? pod.metadata.annotations : undefined;
    }, 30_000, 500);
    expect(annotated["backup.velero.io/backup-volumes"]).toBe("data,cache");
    await beforePod();
    await core.createNamespacedPod({ namespace: APP, body: this.appPod() });
    await until("the app Running", async () => ((await core.readNamespacedPod({ name: "db", namespace: APP })).status?.phase === "Running" ? true : undefined), 90_000);
    await until("the app's data written", () => Promise.resolve(this.exec("test -f /cache/hot.txt && wc -l < /data/table.txt").trim() === "20000" ? true : undefined), 30_000);
    return this.appData();
  }

  appData(): { table: string; hot: string } {
    return { table: this.exec("md5sum < /data/table.txt"), hot: this.exec("cat /cache/hot.txt") };
  }

  /** `velero backup create --wait`: Completed, its hook run in the container, a PodVolumeBackup per volume by `uploader`. */
  backUp(name: string, uploader: "kopia" | "restic", location?: string): void {
    const since = Date.now();
    this.velero(["backup", "create", name, "--include-namespaces", APP, ...(location ? ["--storage-location", location] : []), "--wait"]);
    this.timings[`backup ${name}`] = (Date.now() - since) / 1000;
    const backup = JSON.parse(this.kubectl(["-n", VELERO_NS, "get", "backup", name, "-o", "json"])) as { status: { phase: string; hookStatus?: { hooksAttempted?: number; hooksFailed?: number } } };
    expect(backup.status.phase).toBe("Completed");
    expect(backup.status.hookStatus).toMatchObject({ hooksAttempted: 1 });
    expect(backup.status.hookStatus?.hooksFailed ?? 0).toBe(0);
    // The pre-backup hook ran in the container: its dump is on the volume.
    expect(this.exec("cat /data/dump.txt").trim()).toBe("20000");
    const pvbs = JSON.parse(this.kubectl(["-n", VELERO_NS, "get", "podvolumebackups", "-l", `velero.io/backup-name=${name}`, "-o", "json"])) as { items: Array<{ spec: { volume: string; uploaderType?: string }; status: { phase: string } }> };
    expect(pvbs.items.map((p) => [p.spec.volume, p.spec.uploaderType ?? "restic", p.status.phase]).sort()).toEqual([
      ["cache", uploader, "Completed"],
      ["data", uploader, "Completed"],
    ]);
  }

  /** Deletes the app's namespace, gives the claim a fresh volume, restores `backup`: Completed, the app Running. */
  async deleteAndRestore(backup: string, restore: string): Promise<V1Pod> {
    const core = this.node.kubeConfig.makeApiClient(CoreV1Api);
    const since = Date.now();
    const volume = (await core.readNamespacedPersistentVolumeClaim({ name: "data", namespace: APP })).spec!.volumeName!;
    await core.deleteNamespace({ name: APP });
    await until("namespace shop gone", async () => {
      try {
        await core.readNamespace({ name: APP });
        return undefined;
      } catch {
        return true;
      }
    }, 120_000);
    // The "provisioner": an empty volume for the restored claim (Velero restores file-system-backed claims unbound).
    this.kubectl(["delete", "pv", volume]);
    this.provisionVolume(`shop-data-${restore}`);
    this.velero(["restore", "create", restore, "--from-backup", backup, "--wait"]);
    this.timings[`delete and restore ${restore}`] = (Date.now() - since) / 1000;
    const restored = JSON.parse(this.kubectl(["-n", VELERO_NS, "get", "restore", restore, "-o", "json"])) as { status: { phase: string } };
    expect(restored.status.phase).toBe("Completed");
    return until("the restored app Running", async () => {
      const p = await core.readNamespacedPod({ name: "db", namespace: APP });
      return p.status?.phase === "Running" ? p : undefined;
    }, 120_000);
  }
}

