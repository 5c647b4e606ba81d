import { CoreV1Api, CustomObjectsApi, makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { buildClusterState, type ClusterState } from "../admission/state.js";
import { POLICY_API_VERSION, POLICY_GROUP, POLICY_VERSION } from "../policy/types.js";
import type { Logger } from "../server/logger.js";

interface Source {
  name: string;
  path: string;
  list: () => Promise<KubernetesListObject<KubernetesObject>>;
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
    const policies = (plural: string) => () =>
      custom.listClusterCustomObject({ group: POLICY_GROUP, version: POLICY_VERSION, plural }) as Promise<KubernetesListObject<KubernetesObject>>;
    this.sources = [
      { name: "namespaces", path: "/api/v1/namespaces", list: () => core.listNamespace() },
      { name: "snapshotpolicies", path: `/apis/${POLICY_GROUP}/${POLICY_VERSION}/snapshotpolicies`, list: policies("snapshotpolicies") },
      { name: "clustersnapshotpolicies", path: `/apis/${POLICY_GROUP}/${POLICY_VERSION}/clustersnapshotpolicies`, list: policies("clustersnapshotpolicies") },
    ];
    for (const source of this.sources) {
      const informer = makeInformer(kc, source.path, source.list);
      for (const verb of ["add", "update", "delete"] as const) informer.on(verb, () => this.queueRebuild());
      informer.on("connect", () => {
        this.synced.add(source.name);
        this.queueRebuild();
      });
      informer.on("error", (err: unknown) => {
        if (this.stopped) return;
        this.log.warn({ source: source.name, err: String(err) }, "watch failed; restarting in 3s");
        setTimeout(() => {
          if (!this.stopped) informer.start().catch((e: unknown) => this.log.warn({ source: source.name, err: String(e) }, "restart failed"));
        }, 3_000).unref();
      });
      this.informers.push(informer);
    }
  }

  async start(): Promise<void> {
    await Promise.all(
      this.informers.map((informer, i) =>
        informer.start().then(
          () => {
            this.synced.add(this.sources[i]!.name);
            this.queueRebuild();
          },
          (err: unknown) => this.log.warn({ source: this.sources[i]!.name, err: String(err) }, "initial list failed; will retry"),
        ),
      ),
    );
  }

  get isSynced(): boolean {
    return this.synced.size === this.sources.length;
  }

  current(): ClusterState {
    return this.snapshot;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private queueRebuild(): void {
    if (this.rebuildQueued) return;
    this.rebuildQueued = true;
    setImmediate(() => {
      this.rebuildQueued = false;
      const objects = this.informers.flatMap((informer, i) =>
        informer.list().map((o) => ({ ...o, kind: kindOf(this.sources[i]!.name), apiVersion: o.apiVersion ?? POLICY_API_VERSION })),
      );
      this.snapshot = buildClusterState({ objects, webhookNamespace: this.webhookNamespace });
      for (const problem of this.snapshot.problems) this.log.warn({ problem }, "object ignored");
      this.onRebuild(this.snapshot);
    });
  }
}

/** Watch events of typed lists omit kind on items; restore it from the source. */
function kindOf(source: string): string {
  return source === "namespaces" ? "Namespace" : source === "snapshotpolicies" ? "SnapshotPolicy" : "ClusterSnapshotPolicy";
}
