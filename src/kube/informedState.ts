import { CoreV1Api, CustomObjectsApi, makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { buildClusterState, type ClusterState } from "../admission/state.js";
import { POLICY_API_VERSION, POLICY_GROUP, POLICY_VERSION } from "../policy/types.js";
import type { Logger } from "../server/logger.js";

interface Source {
  name: string;
  kind: string;
  path: string;
  list: () => Promise<KubernetesListObject<KubernetesObject>>;
  /** Velero's CRDs may not be installed yet: a missing resource counts as synced and empty. */
  optional?: boolean;
}

/**
 * Keeps a ClusterState snapshot current from informers (watches) on the objects decisions read.
 * Readiness waits for the first full list of every source. The snapshot is rebuilt once per burst
 * of events, never per request.
 */
export class InformedState {
  private snapshot: ClusterState;
  private readonly informers: Array<ReturnType<typeof makeInformer<KubernetesObject>>> = [];
  private readonly synced = new Set<string>();
  private readonly failed = new Set<string>();
  /** Sources whose objects were listed (an optional source whose resource is not served is synced, not listed). */
  private readonly listed = new Set<string>();
  /** Restarts waiting after a failure, by source, so a request can bring them forward. */
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; restart: () => void }>();
  private rebuildQueued = false;
  private stopped = false;
  private readonly sources: Source[];

  constructor(
    kc: KubeConfig,
    private readonly log: Logger,
    private readonly webhookNamespace: string | undefined,
    private readonly onRebuild: (state: ClusterState) => void = () => undefined,
  ) {
    this.snapshot = buildClusterState({ objects: [], webhookNamespace });
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const customList = (group: string, version: string, plural: string) => () =>
      custom.listClusterCustomObject({ group, version, plural }) as Promise<KubernetesListObject<KubernetesObject>>;
    const ours = (kind: string, plural: string): Source => ({
      name: plural,
      kind,
      path: `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${plural}`,
      list: customList(POLICY_GROUP, POLICY_VERSION, plural),
    });
    const velero = (kind: string, plural: string): Source => ({ name: plural, kind, path: `/apis/velero.io/v1/${plural}`, list: customList("velero.io", "v1", plural), optional: true });
    this.sources = [
      { name: "namespaces", kind: "Namespace", path: "/api/v1/namespaces", list: () => core.listNamespace() },
      ours("SnapshotPolicy", "snapshotpolicies"),
      ours("ClusterSnapshotPolicy", "clustersnapshotpolicies"),
      velero("BackupStorageLocation", "backupstoragelocations"),
      velero("Backup", "backups"),
      velero("Schedule", "schedules"),
      velero("VolumeSnapshotLocation", "volumesnapshotlocations"),
    ];
    for (const source of this.sources) {
      const informer = makeInformer(kc, source.path, source.list);
      for (const verb of ["add", "update", "delete"] as const) informer.on(verb, () => this.queueRebuild());
      // The informer reports list and watch failures here (its start() never rejects); restart it.
      informer.on("error", (err: unknown) => {
        if (this.stopped) return;
        this.failed.add(source.name);
        const missing = (err as { code?: number }).code === 404;
        if (missing && source.optional && !this.synced.has(source.name)) {
          this.synced.add(source.name); // not installed: nothing to know yet
          this.queueRebuild();
        }
        if (missing) this.listed.delete(source.name);
        this.log.warn({ source: source.name, err: String(err) }, missing ? "resource not served; retrying in 30s" : "list or watch failed; retrying in 3s");
        const restart = () => {
          this.retries.delete(source.name);
          void this.startOne(informer, source);
        };
        this.retries.set(source.name, { timer: setTimeout(restart, missing ? 30_000 : 3_000).unref(), restart });
      });
      this.informers.push(informer);
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((informer, i) => this.startOne(informer, this.sources[i]!)));
  }

  /** Synced only once a full list succeeded (the informer's "connect" fires before its list). */
  private async startOne(informer: ReturnType<typeof makeInformer<KubernetesObject>>, source: Source): Promise<void> {
    if (this.stopped) return;
    this.failed.delete(source.name);
    await informer.start();
    if (!this.failed.has(source.name)) {
      this.synced.add(source.name);
      this.listed.add(source.name);
      this.queueRebuild();
    }
  }

  get isSynced(): boolean {
    return this.synced.size === this.sources.length;
  }

  current(): ClusterState {
    return this.snapshot;
  }

  /**
   * A Velero object is being admitted, so Velero's CRDs are served now: sources waiting out their 30 s retry
   * because the resource was missing start at once (until they have listed, the rules only warn).
   */
  listUnlistedNow(): void {
    for (const source of this.sources) {
      if (!source.optional || this.listed.has(source.name)) continue;
      const retry = this.retries.get(source.name);
      if (!retry) continue;
      clearTimeout(retry.timer);
      retry.restart();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const retry of this.retries.values()) clearTimeout(retry.timer);
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private queueRebuild(): void {
    if (this.rebuildQueued) return;
    this.rebuildQueued = true;
    setImmediate(() => {
      this.rebuildQueued = false;
      const objects = this.informers.flatMap((informer, i) => informer.list().map((o) => ({ ...o, kind: this.sources[i]!.kind, apiVersion: o.apiVersion ?? POLICY_API_VERSION })));
      const unlisted = this.sources.filter((s) => (s.kind === "BackupStorageLocation" || s.kind === "Backup") && !this.listed.has(s.name)).map((s) => s.kind as "BackupStorageLocation" | "Backup");
      this.snapshot = buildClusterState({ objects, webhookNamespace: this.webhookNamespace, snapshotLocationsKnown: this.listed.has("volumesnapshotlocations"), unlisted });
      for (const problem of this.snapshot.problems) this.log.warn({ problem }, "object ignored");
      this.onRebuild(this.snapshot);
    });
  }
}
