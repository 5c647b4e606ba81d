/**
 * What Velero's file-system backup does with one pod volume once app-snapshots has admitted the pod,
 * in each of Velero's two modes. `explain` prints it; the pod rules produce it.
 */
export interface ModeVerdict {
  backedUp: boolean;
  /** Why, in words an admin acts on ("selected by policy shop/db", "memory-backed emptyDir", ...). */
  reason: string;
}

export interface VolumeVerdict {
  /** spec.volumes[].name */
  name: string;
  /** The volume's source type (persistentVolumeClaim, emptyDir, secret, ...; "unknown" if none we know). */
  source: string;
  /** For a persistentVolumeClaim volume: the claim it mounts. */
  claimName?: string;
  /** Velero in opt-in mode (the Backup's defaultVolumesToFsBackup unset or false). */
  optIn: ModeVerdict;
  /** Velero in opt-out mode (defaultVolumesToFsBackup: true). */
  optOut: ModeVerdict;
}
