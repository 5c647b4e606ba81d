/**
 * Which pod volumes Velero's file-system backup can ever take (velero internal/volumehelper and
 * pkg/podvolume/backupper.go): it always skips these source types and `default-token*` volumes,
 * block volumes (volumeDevices), volumes no regular container mounts (init containers' mounts do
 * not count), and every volume of a pod that is not Running.
 */
export const NEVER_BACKED_UP_SOURCES = ["hostPath", "secret", "configMap", "projected", "downwardAPI"] as const;

/** Source types a policy may select; the CRD's enum is generated from the same list. */
export const SELECTABLE_SOURCES = [
  "persistentVolumeClaim",
  "emptyDir",
  "ephemeral",
  "nfs",
  "csi",
  "iscsi",
  "fc",
  "cephfs",
  "rbd",
  "glusterfs",
  "azureFile",
  "azureDisk",
  "gcePersistentDisk",
  "awsElasticBlockStore",
  "cinder",
  "flexVolume",
  "flocker",
  "portworxVolume",
  "vsphereVolume",
  "quobyte",
  "scaleIO",
  "storageos",
  "photonPersistentDisk",
  "image",
] as const;

export type VolumeSource = (typeof SELECTABLE_SOURCES)[number] | (typeof NEVER_BACKED_UP_SOURCES)[number] | "unknown";

export const DEFAULT_SOURCES: readonly VolumeSource[] = ["persistentVolumeClaim", "emptyDir", "ephemeral"];

const KNOWN = new Set<string>([...SELECTABLE_SOURCES, ...NEVER_BACKED_UP_SOURCES]);

/** The source type of a pod volume: the one key besides `name`. */
export function volumeSourceOf(volume: Record<string, unknown>): VolumeSource {
  for (const key of Object.keys(volume)) if (key !== "name" && KNOWN.has(key)) return key as VolumeSource;
  return "unknown";
}

/** Why Velero would never back this volume up, or undefined if it could. */
export function neverBackedUpReason(name: string, source: VolumeSource): string | undefined {
  if ((NEVER_BACKED_UP_SOURCES as readonly string[]).includes(source)) return `Velero never backs up ${source} volumes`;
  if (name.startsWith("default-token")) return "Velero never backs up default-token volumes";
  return undefined;
}
