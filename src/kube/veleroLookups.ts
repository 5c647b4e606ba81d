import { AppsV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { AdmissionReview } from "../admission/review.js";
import type { ClusterState } from "../admission/state.js";
import { argvOf, defaultBackupLocationFlag, defaultVolumesToFsBackupFlag, veleroContainerOf } from "../velero/serverDeployment.js";
import { imageTag } from "../velero/version.js";
import type { BackupStorageLocation } from "../velero/objects.js";
import { bounded } from "./bounded.js";

const TTL_MS = 60_000;
const isNotFound = (err: unknown) => (err as { code?: number }).code === 404;

export interface VeleroLookupsOptions {
  /** Read the Secrets a location names (keys only); without it the rules say the keys were not checked. */
  checkSecretKeys: boolean;
  /**
   * How long one lookup may take (default 2 s). The apiserver waits at most the webhook's timeoutSeconds (10 s in
   * the chart) and then fails the request closed, so a slow lookup is dropped and its answer counts as unknown.
   */
  timeoutMs?: number;
  /** Told about each lookup that failed or timed out. */
  onLookupFailed?: (what: string, err: unknown) => void;
}

const DEFAULT_TIMEOUT_MS = 2_000;

interface VeleroServer {
  tag: string | undefined;
  defaultVolumesToFsBackup: boolean | undefined;
  defaultBackupLocation: string | undefined;
}

/** The Secrets a location names: its credential and its CA certificate. */
function secretNamesOf(location: BackupStorageLocation | undefined): string[] {
  return [location?.spec?.credential?.name, location?.spec?.objectStorage?.caCertRef?.name].filter((n): n is string => typeof n === "string" && n !== "");
}

/**
 * What Velero validation needs beyond the informers, read on demand (location changes are rare):
 * the data keys of referenced Secrets (never their values, and only when enabled), the Velero
 * server's version and --default-volumes-to-fs-backup from its Deployment, and the node count.
 * The Deployment and node count are cached for a minute.
 */
export class VeleroLookups {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly servers = new Map<string, { at: number; server: VeleroServer }>();
  private nodes: { at: number; count: number } | undefined;

  constructor(
    kc: KubeConfig,
    private readonly options: VeleroLookupsOptions,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  async prepare(review: AdmissionReview, state: ClusterState): Promise<ClusterState> {
    const kind = review.request.kind.kind;
    if (kind !== "BackupStorageLocation" && kind !== "Backup" && kind !== "Schedule") return state;
    const namespace = review.request.namespace ?? "default";
    // Both versions of an updated location: the rules compare what the object had with what it has.
    const secretNames =
      kind === "BackupStorageLocation" && this.options.checkSecretKeys
        ? [...new Set([review.request.object, review.request.oldObject].flatMap((o) => secretNamesOf(o as BackupStorageLocation | undefined)))]
        : [];
    const [secrets, server, nodeCount] = await Promise.all([
      this.bounded(`Secrets ${secretNames.join(", ")}`, Promise.all(secretNames.map(async (name) => [`${namespace}/${name}`, await this.secretKeys(namespace, name)] as const))),
      this.bounded(`the Velero Deployment in ${namespace}`, this.veleroServer(namespace)),
      kind === "BackupStorageLocation" ? this.bounded("the node count", this.nodeCount()) : Promise.resolve(state.velero.nodeCount),
    ]);
    const velero = { ...state.velero, nodeCount };
    // A lookup that failed tells nothing: the Secrets stay unknown (the rules say "not checked"), so does the rest.
    if (this.options.checkSecretKeys && secrets) {
      // Known for what was read: a Secret missing from the map does not exist.
      const secretMap = new Map(state.velero.secrets ?? []);
      for (const [key, keys] of secrets) if (keys) secretMap.set(key, keys);
      velero.secrets = secretMap;
    }
    if (server?.tag) velero.versions = new Map(state.velero.versions).set(namespace, server.tag);
    if (server?.defaultVolumesToFsBackup !== undefined) velero.defaultVolumesToFsBackup = new Map(state.velero.defaultVolumesToFsBackup).set(namespace, server.defaultVolumesToFsBackup);
    if (server?.defaultBackupLocation !== undefined) velero.defaultBackupLocation = new Map(state.velero.defaultBackupLocation).set(namespace, server.defaultBackupLocation);
    return { ...state, velero };
  }

  private bounded<T>(what: string, lookup: Promise<T>): Promise<T | undefined> {
    return bounded(lookup, this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS, (err) => this.options.onLookupFailed?.(what, err));
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

  private async veleroServer(namespace: string): Promise<VeleroServer> {
    const cached = this.servers.get(namespace);
    if (cached && Date.now() - cached.at < TTL_MS) return cached.server;
    let server: VeleroServer = { tag: undefined, defaultVolumesToFsBackup: undefined, defaultBackupLocation: undefined };
    try {
      const deployment = await this.apps.readNamespacedDeployment({ namespace, name: "velero" });
      const container = veleroContainerOf({ metadata: { name: "velero" }, spec: deployment.spec });
      server = { tag: imageTag(container?.image ?? ""), defaultVolumesToFsBackup: defaultVolumesToFsBackupFlag(argvOf(container)), defaultBackupLocation: defaultBackupLocationFlag(argvOf(container)) };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // Only a found server is cached: a Velero installed a moment ago must be seen at once.
    if (server.tag) this.servers.set(namespace, { at: Date.now(), server });
    return server;
  }

  private async nodeCount(): Promise<number> {
    if (this.nodes && Date.now() - this.nodes.at < TTL_MS) return this.nodes.count;
    const list = await this.core.listNode({ limit: 500 });
    const count = list.items.length + (list.metadata?.remainingItemCount ?? 0);
    this.nodes = { at: Date.now(), count };
    return count;
  }
}
