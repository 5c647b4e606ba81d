import { parsePolicy, type ClusterSnapshotPolicy, type SnapshotPolicy } from "../policy/types.js";
import { backupSchema, backupStorageLocationSchema, namespaceOf, readVeleroObject, refOf, scheduleSchema, type Backup, type BackupStorageLocation, type Schedule } from "../velero/objects.js";
import { argvOf, defaultBackupLocationFlag, defaultVolumesToFsBackupFlag, veleroContainerOf } from "../velero/serverDeployment.js";
import { DEFAULT_VELERO_USERNAMES } from "../velero/serviceAccounts.js";
import { imageTag } from "../velero/version.js";
import { DEFAULT_CLASS_ANNOTATION, hostPathReason } from "../pods/hostPathClaims.js";

/** What the Velero rules need to know about the cluster. */
export interface VeleroState {
  readonly locations: readonly BackupStorageLocation[];
  readonly backups: readonly Backup[];
  readonly schedules: readonly Schedule[];
  /** VolumeSnapshotLocations as "namespace/name"; undefined when not known (not watched). */
  readonly snapshotLocations: ReadonlySet<string> | undefined;
  /**
   * Secrets as "namespace/name" → their data keys (values are never kept); a Secret missing from a
   * known map does not exist. undefined when Secrets are not known (reading them is opt-in).
   */
  readonly secrets: ReadonlyMap<string, readonly string[]> | undefined;
  /** The Velero server's image tag per namespace, from its Deployment. */
  readonly versions: ReadonlyMap<string, string>;
  /** The Velero server's --default-volumes-to-fs-backup per namespace, where its Deployment gives it. */
  readonly defaultVolumesToFsBackup: ReadonlyMap<string, boolean>;
  /** The Velero server's --default-backup-storage-location per namespace, where its Deployment gives it ("default" else). */
  readonly defaultBackupLocation: ReadonlyMap<string, string>;
  /**
   * Whether `locations` and `backups` hold every such object. Not while the webhook has not listed them: Velero's
   * CRDs installed after the webhook started (a rule must then not deny for something it cannot see).
   */
  readonly locationsKnown: boolean;
  readonly backupsKnown: boolean;
  readonly nodeCount: number | undefined;
  /** Usernames of Velero's own ServiceAccounts (system:serviceaccount:<ns>:<name>): their requests always pass. */
  readonly serviceAccounts: readonly string[];
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
  /** Claims ("namespace/name") whose data Velero's file-system backup skips, with why (src/pods/hostPathClaims.ts). */
  readonly hostPathClaims: ReadonlyMap<string, string>;
  /** Objects that could not be used, with the reason (shown by the CLI, logged by the webhook). */
  readonly problems: readonly string[];
}

export interface StateInput {
  objects: readonly unknown[];
  webhookNamespace?: string | undefined;
  /** Set when VolumeSnapshotLocations are among the objects (even if there are none). */
  snapshotLocationsKnown?: boolean;
  /** Set when every Secret Velero objects may name is among the objects (also implied by any Secret in them). */
  secretsKnown?: boolean;
  /** Velero's ServiceAccount usernames (default: those `velero install` and Velero's Helm chart create in namespace velero). */
  veleroServiceAccounts?: readonly string[];
  /** Kinds whose objects were not (yet) listed: their absence from `objects` proves nothing. */
  unlisted?: readonly ("BackupStorageLocation" | "Backup")[];
}

type ClaimObject = { metadata?: { name?: string; namespace?: string }; spec?: { volumeName?: string; storageClassName?: string | null } };
type StorageClassFacts = { name: string; provisioner?: string; isDefault: boolean };

/** The claims among state files whose data Velero's file-system backup would skip (review and explain). */
function hostPathClaimsOf(claims: readonly ClaimObject[], volumes: ReadonlyMap<string, { name: string; hostPath: boolean }>, classes: ReadonlyMap<string, StorageClassFacts>): Map<string, string> {
  const out = new Map<string, string>();
  const defaultClass = [...classes.values()].find((c) => c.isDefault);
  for (const claim of claims) {
    if (!claim.metadata?.name) continue;
    const volumeName = claim.spec?.volumeName;
    const className = claim.spec?.storageClassName;
    const storageClass = className === undefined || className === null ? defaultClass : classes.get(className);
    const reason = hostPathReason({ ...(volumeName ? { volume: volumes.get(volumeName) ?? { name: volumeName } } : {}), ...(storageClass ? { storageClass } : {}) });
    if (reason) out.set(`${claim.metadata.namespace ?? "default"}/${claim.metadata.name}`, reason);
  }
  return out;
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
  const fsBackupDefaults = new Map<string, boolean>();
  const locationDefaults = new Map<string, string>();
  let sawSecrets = input.secretsKnown ?? false;
  let nodeCount: number | undefined;
  let sawSnapshotLocations = input.snapshotLocationsKnown ?? false;
  const claims: ClaimObject[] = [];
  const volumes = new Map<string, { name: string; hostPath: boolean }>();
  const classes = new Map<string, StorageClassFacts>();

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
      sawSecrets = true;
      const secret = object as { metadata?: { name?: string; namespace?: string }; data?: object; stringData?: object };
      secrets.set(refOf(secret), [...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
    } else if (kind === "Deployment") {
      const deployment = object as { metadata?: { namespace?: string; name?: string; labels?: Record<string, string> }; spec?: unknown };
      const container = veleroContainerOf(deployment);
      const tag = imageTag(container?.image ?? "");
      if (tag) versions.set(namespaceOf(deployment), tag);
      const fsBackup = defaultVolumesToFsBackupFlag(argvOf(container));
      if (fsBackup !== undefined) fsBackupDefaults.set(namespaceOf(deployment), fsBackup);
      const defaultLocation = defaultBackupLocationFlag(argvOf(container));
      if (defaultLocation !== undefined) locationDefaults.set(namespaceOf(deployment), defaultLocation);
    } else if (kind === "PersistentVolumeClaim") {
      claims.push(object as ClaimObject);
    } else if (kind === "PersistentVolume") {
      const pv = object as { metadata?: { name?: string }; spec?: { hostPath?: unknown } };
      if (pv.metadata?.name) volumes.set(pv.metadata.name, { name: pv.metadata.name, hostPath: pv.spec?.hostPath !== undefined && pv.spec.hostPath !== null });
    } else if (kind === "StorageClass") {
      const sc = object as { metadata?: { name?: string; annotations?: Record<string, string> }; provisioner?: string };
      if (sc.metadata?.name) classes.set(sc.metadata.name, { name: sc.metadata.name, ...(sc.provisioner ? { provisioner: sc.provisioner } : {}), isDefault: sc.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === "true" });
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
    secrets: sawSecrets ? secrets : undefined,
    versions,
    defaultVolumesToFsBackup: fsBackupDefaults,
    defaultBackupLocation: locationDefaults,
    locationsKnown: !(input.unlisted ?? []).includes("BackupStorageLocation"),
    backupsKnown: !(input.unlisted ?? []).includes("Backup"),
    nodeCount,
    serviceAccounts: input.veleroServiceAccounts ?? DEFAULT_VELERO_USERNAMES,
  };
  return { policiesByNamespace, clusterPolicies, namespaces, webhookNamespace: input.webhookNamespace, velero, hostPathClaims: hostPathClaimsOf(claims, volumes, classes), problems };
}

/** Labels of a namespace; one the state has not seen yet still carries the label the apiserver always sets. */
export function namespaceLabels(state: ClusterState, namespace: string): Readonly<Record<string, string>> {
  return state.namespaces.get(namespace) ?? { "kubernetes.io/metadata.name": namespace };
}
