/** The Velero objects (velero.io/v1) the validating rules read, typed loosely: input is untrusted. */
export interface SecretKeyRef {
  name?: string;
  key?: string;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  creationTimestamp?: string;
}

export interface BackupStorageLocation {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: {
    provider?: string;
    objectStorage?: { bucket?: string; prefix?: string; caCert?: string; caCertRef?: SecretKeyRef };
    config?: Record<string, string>;
    credential?: SecretKeyRef;
    default?: boolean;
    accessMode?: string;
    backupSyncPeriod?: string;
    validationFrequency?: string;
  };
}

export interface ExecHook {
  container?: string;
  command?: string[];
  onError?: string;
  timeout?: string;
  execTimeout?: string;
  waitTimeout?: string;
  waitForReady?: boolean;
}

export interface BackupSpec {
  storageLocation?: string;
  volumeSnapshotLocations?: string[];
  defaultVolumesToRestic?: boolean;
  defaultVolumesToFsBackup?: boolean;
  ttl?: string;
  csiSnapshotTimeout?: string;
  itemOperationTimeout?: string;
  hooks?: { resources?: Array<{ name?: string; pre?: Array<{ exec?: ExecHook }>; post?: Array<{ exec?: ExecHook }> }> };
}

export interface Backup {
  metadata?: ObjectMeta;
  spec?: BackupSpec;
  status?: { phase?: string };
}

export interface Schedule {
  metadata?: ObjectMeta;
  spec?: { schedule?: string; template?: BackupSpec; paused?: boolean };
}

export interface Restore {
  metadata?: ObjectMeta;
  spec?: {
    backupName?: string;
    scheduleName?: string;
    itemOperationTimeout?: string;
    hooks?: {
      resources?: Array<{
        name?: string;
        postHooks?: Array<{ exec?: ExecHook; init?: { initContainers?: Array<{ name?: string; image?: string; command?: string[] }>; timeout?: string } }>;
      }>;
    };
  };
}

/** A name without "/" means a plugin in velero.io (Velero's sanitizeName). */
export function normalizeProvider(provider: string): string {
  return provider.includes("/") ? provider : `velero.io/${provider}`;
}

export const LVP_PROVIDERS = ["replicated.com/hostpath", "replicated.com/nfs", "replicated.com/pvc"];
export const KNOWN_PROVIDERS = ["velero.io/aws", "velero.io/gcp", "velero.io/azure", ...LVP_PROVIDERS];
