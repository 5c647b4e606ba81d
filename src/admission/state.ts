import { parsePolicy, type ClusterSnapshotPolicy, type SnapshotPolicy } from "../policy/types.js";
import { backupSchema, backupStorageLocationSchema, namespaceOf, readVeleroObject, refOf, scheduleSchema, type Backup, type BackupStorageLocation, type Schedule } from "../velero/objects.js";
import { imageTag } from "../velero/version.js";

/** What the Velero rules need to know about the cluster. */
export interface VeleroState {
  readonly locations: readonly BackupStorageLocation[];
  readonly backups: readonly Backup[];
  readonly schedules: readonly Schedule[];
  /** VolumeSnapshotLocations as "namespace/name"; undefined when not known (not watched). */
  readonly snapshotLocations: ReadonlySet<string> | undefined;
  /** Secrets as "namespace/name" → their data keys. Values are never kept. */
  readonly secrets: ReadonlyMap<string, readonly string[]>;
  /** The Velero server's image tag per namespace, from its Deployment. */
  readonly versions: ReadonlyMap<string, string>;
  readonly nodeCount: number | undefined;
}

/**
 * The cluster objects a decision needs, as one immutable snapshot. The webhook rebuilds it from
 * informers when something changes; `review` and `explain` build it from YAML files.
 */
export interface ClusterState {
  /** SnapshotPolicies per namespace, each list in name order. */
  readonly policiesByNamespace: ReadonlyMap<string, readonly SnapshotPolicy[]>;
  /** ClusterSnapshotPolicies in name order. */
  readonly clusterPolicies: readonly ClusterSnapshotPolicy[];
  /** Namespace labels by namespace name. */
  readonly namespaces: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Pods in the webhook's own namespace are never mutated (self-mutation deadlocks). */
  readonly webhookNamespace: string | undefined;
  readonly velero: VeleroState;
  /** Objects that could not be used, with the reason (shown by the CLI, logged by the webhook). */
  readonly problems: readonly string[];
}

export interface StateInput {
  objects: readonly unknown[];
  webhookNamespace?: string | undefined;
  /** Set when VolumeSnapshotLocations are among the objects (even if there are none). */
  snapshotLocationsKnown?: boolean;
}

/** The Velero server Deployment: named velero, or labelled as Velero's by `velero install` or its Helm chart. */
function veleroImageOf(object: { metadata?: { name?: string; labels?: Record<string, string> }; spec?: unknown }): string | undefined {
  const labels = object.metadata?.labels ?? {};
  const isVelero = object.metadata?.name === "velero" || labels.component === "velero" || labels["app.kubernetes.io/name"] === "velero";
  if (!isVelero) return undefined;
  const containers = (object.spec as { template?: { spec?: { containers?: Array<{ name?: string; image?: string }> } } } | undefined)?.template?.spec?.containers ?? [];
  return (containers.find((c) => c.name === "velero") ?? containers[0])?.image;
}

const byName = (a: { metadata: { name: string } }, b: { metadata: { name: string } }) =>
  a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;

export function buildClusterState(input: StateInput): ClusterState {
  const policiesByNamespace = new Map<string, SnapshotPolicy[]>();
  const clusterPolicies: ClusterSnapshotPolicy[] = [];
  const namespaces = new Map<string, Record<string, string>>();
  const problems: string[] = [];
  const locations: BackupStorageLocation[] = [];
  const backups: Backup[] = [];
  const schedules: Schedule[] = [];
  const snapshotLocations = new Set<string>();
  const secrets = new Map<string, string[]>();
  const versions = new Map<string, string>();
  let nodeCount: number | undefined;
  let sawSnapshotLocations = input.snapshotLocationsKnown ?? false;

  for (const object of input.objects) {
    const kind = (object as { kind?: unknown } | null)?.kind;
    if (kind === "SnapshotPolicy" || kind === "ClusterSnapshotPolicy") {
      try {
        const policy = parsePolicy(object);
        if (policy.kind === "SnapshotPolicy") {
          const list = policiesByNamespace.get(policy.metadata.namespace) ?? [];
          list.push(policy);
          policiesByNamespace.set(policy.metadata.namespace, list);
        } else {
          clusterPolicies.push(policy);
        }
      } catch (err) {
        problems.push((err as Error).message);
      }
    } else if (kind === "Namespace") {
      const metadata = (object as { metadata?: { name?: string; labels?: Record<string, string> } }).metadata;
      if (metadata?.name) namespaces.set(metadata.name, { "kubernetes.io/metadata.name": metadata.name, ...(metadata.labels ?? {}) });
    } else if (kind === "BackupStorageLocation") {
      locations.push(readVeleroObject(backupStorageLocationSchema, object));
    } else if (kind === "Backup") {
      backups.push(readVeleroObject(backupSchema, object));
    } else if (kind === "Schedule") {
      schedules.push(readVeleroObject(scheduleSchema, object));
    } else if (kind === "VolumeSnapshotLocation") {
      sawSnapshotLocations = true;
      snapshotLocations.add(refOf(object as { metadata?: { name?: string; namespace?: string } }));
    } else if (kind === "Secret") {
      // Keys only: a secret's values never enter the state.
      const secret = object as { metadata?: { name?: string; namespace?: string }; data?: object; stringData?: object };
      secrets.set(refOf(secret), [...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
    } else if (kind === "Deployment") {
      const deployment = object as { metadata?: { namespace?: string; name?: string; labels?: Record<string, string> }; spec?: unknown };
      const tag = imageTag(veleroImageOf(deployment) ?? "");
      if (tag) versions.set(namespaceOf(deployment), tag);
    } else if (kind === "Node") {
      nodeCount = (nodeCount ?? 0) + 1;
    }
  }
  for (const list of policiesByNamespace.values()) list.sort(byName);
  clusterPolicies.sort(byName);
  const velero: VeleroState = {
    locations,
    backups,
    schedules,
    snapshotLocations: sawSnapshotLocations ? snapshotLocations : undefined,
    secrets,
    versions,
    nodeCount,
  };
  return { policiesByNamespace, clusterPolicies, namespaces, webhookNamespace: input.webhookNamespace, velero, problems };
}

/** Labels of a namespace; one the state has not seen yet still carries the label the apiserver always sets. */
export function namespaceLabels(state: ClusterState, namespace: string): Readonly<Record<string, string>> {
  return state.namespaces.get(namespace) ?? { "kubernetes.io/metadata.name": namespace };
}
