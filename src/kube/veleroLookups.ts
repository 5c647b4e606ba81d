import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { AdmissionReview } from "../admission/review.js";
import type { ClusterState } from "../admission/state.js";
import { imageTag } from "../velero/version.js";
import type { BackupStorageLocation } from "../velero/objects.js";

const TTL_MS = 60_000;
const isNotFound = (err: unknown) => (err as { code?: number }).code === 404;

/**
 * What Velero validation needs beyond the informers, read on demand (location changes are rare):
 * the data keys of referenced Secrets (never their values), the Velero server version from its
 * Deployment, and the node count. Version and node count are cached for a minute.
 */
export class VeleroLookups {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly versions = new Map<string, { at: number; tag: string | undefined }>();
  private nodes: { at: number; count: number } | undefined;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  async prepare(review: AdmissionReview, state: ClusterState): Promise<ClusterState> {
    if (review.request.kind.kind !== "BackupStorageLocation" && review.request.kind.kind !== "Backup" && review.request.kind.kind !== "Schedule") return state;
    const namespace = review.request.namespace ?? "default";
    const location = (review.request.object ?? review.request.oldObject) as BackupStorageLocation | undefined;
    const secretNames = review.request.kind.kind === "BackupStorageLocation" ? [location?.spec?.credential?.name, location?.spec?.objectStorage?.caCertRef?.name].filter((n): n is string => Boolean(n)) : [];
    const [secrets, version, nodeCount] = await Promise.all([
      Promise.all(secretNames.map(async (name) => [`${namespace}/${name}`, await this.secretKeys(namespace, name)] as const)),
      this.veleroVersion(namespace),
      review.request.kind.kind === "BackupStorageLocation" ? this.nodeCount() : Promise.resolve(state.velero.nodeCount),
    ]);
    const secretMap = new Map(state.velero.secrets);
    for (const [key, keys] of secrets) if (keys) secretMap.set(key, keys);
    const versions = new Map(state.velero.versions);
    if (version) versions.set(namespace, version);
    return { ...state, velero: { ...state.velero, secrets: secretMap, versions, nodeCount } };
  }

  private async secretKeys(namespace: string, name: string): Promise<string[] | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      return Object.keys(secret.data ?? {});
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async veleroVersion(namespace: string): Promise<string | undefined> {
    const cached = this.versions.get(namespace);
    if (cached && Date.now() - cached.at < TTL_MS) return cached.tag;
    let tag: string | undefined;
    try {
      const deployment = await this.apps.readNamespacedDeployment({ namespace, name: "velero" });
      const containers = deployment.spec?.template.spec?.containers ?? [];
      tag = imageTag((containers.find((c) => c.name === "velero") ?? containers[0])?.image ?? "");
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // Only a found version is cached: a Velero installed a moment ago must be seen at once.
    if (tag) this.versions.set(namespace, { at: Date.now(), tag });
    return tag;
  }

  private async nodeCount(): Promise<number> {
    if (this.nodes && Date.now() - this.nodes.at < TTL_MS) return this.nodes.count;
    const list = await this.core.listNode({ limit: 500 });
    const count = list.items.length + (list.metadata?.remainingItemCount ?? 0);
    this.nodes = { at: Date.now(), count };
    return count;
  }
}
