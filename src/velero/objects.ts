import { z } from "zod";

/**
 * The Velero objects (velero.io/v1) the validating rules read. Input is untrusted (the `review`
 * CLI takes any JSON, and a CRD may be older than the rules), so every field is parsed leniently:
 * a field of the wrong type reads as absent, and the rules then say what is missing. The rules
 * never see a value of a type they do not expect.
 */
const str = z.string().optional().catch(undefined);
const bool = z.boolean().optional().catch(undefined);
const strList = z.array(z.string()).optional().catch(undefined);
const strMap = z.record(z.string(), z.string()).optional().catch(undefined);
const list = <T extends z.ZodType>(item: T) => z.array(item).optional().catch(undefined);
const obj = <T extends z.ZodRawShape>(shape: T) => z.object(shape).optional().catch(undefined);
/** Present or not is all a rule asks (Velero checks `!= nil`): JSON null reads as absent. */
const present = z.unknown().transform((v) => (v === undefined || v === null ? undefined : true)).optional().catch(undefined);
/** includeClusterResources is a *bool: null and absent are both "not set". */
const nullableBool = z.boolean().nullable().optional().catch(undefined);

const secretKeyRef = obj({ name: str, key: str });
const metadata = z
  .object({ name: str, namespace: str, annotations: strMap, labels: strMap, creationTimestamp: str })
  .optional()
  .catch(undefined);

const execHook = obj({
  container: str,
  command: z.array(z.unknown()).optional().catch(undefined),
  onError: str,
  timeout: str,
  execTimeout: str,
  waitTimeout: str,
  waitForReady: bool,
});

/** The namespace and resource filters Backups and Restores share (velero pkg/apis/velero/v1). */
const filters = {
  includedNamespaces: strList,
  excludedNamespaces: strList,
  includedResources: strList,
  excludedResources: strList,
  labelSelector: present,
  orLabelSelectors: present,
};

const backupSpec = z
  .object({
    ...filters,
    includeClusterResources: nullableBool,
    includedClusterScopedResources: strList,
    excludedClusterScopedResources: strList,
    includedNamespaceScopedResources: strList,
    excludedNamespaceScopedResources: strList,
    storageLocation: str,
    volumeSnapshotLocations: strList,
    defaultVolumesToRestic: bool,
    defaultVolumesToFsBackup: bool,
    ttl: str,
    csiSnapshotTimeout: str,
    itemOperationTimeout: str,
    hooks: obj({ resources: list(z.object({ name: str, pre: list(z.object({ exec: execHook })), post: list(z.object({ exec: execHook })) })) }),
  })
  .optional()
  .catch(undefined);

export const backupStorageLocationSchema = z.object({
  metadata,
  spec: obj({
    provider: str,
    objectStorage: obj({ bucket: str, prefix: str, caCert: str, caCertRef: secretKeyRef }),
    config: strMap,
    credential: secretKeyRef,
    default: bool,
    accessMode: str,
    backupSyncPeriod: str,
    validationFrequency: str,
  }),
});

export const backupSchema = z.object({ metadata, spec: backupSpec, status: obj({ phase: str }) });

export const scheduleSchema = z.object({ metadata, spec: obj({ schedule: str, template: backupSpec, paused: bool }) });

export const restoreSchema = z.object({
  metadata,
  status: obj({ phase: str }),
  spec: obj({
    ...filters,
    backupName: str,
    scheduleName: str,
    existingResourcePolicy: str,
    itemOperationTimeout: str,
    hooks: obj({
      resources: list(
        z.object({
          name: str,
          postHooks: list(
            z.object({
              exec: execHook,
              init: obj({ initContainers: list(z.object({ name: str, image: str, command: z.array(z.unknown()).optional().catch(undefined) })), timeout: str }),
            }),
          ),
        }),
      ),
    }),
  }),
});

export type BackupStorageLocation = z.infer<typeof backupStorageLocationSchema>;
export type Backup = z.infer<typeof backupSchema>;
export type Schedule = z.infer<typeof scheduleSchema>;
export type Restore = z.infer<typeof restoreSchema>;
export type BackupSpec = NonNullable<z.infer<typeof backupSpec>>;
export type ExecHook = NonNullable<z.infer<typeof execHook>>;
export type SecretKeyRef = z.infer<typeof secretKeyRef>;

/** Parses leniently; anything that is not even an object reads as an empty object. */
export function readVeleroObject<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  return result.success ? result.data : schema.parse({});
}

/** The namespace of a namespaced object; admission fills it in from the request when it is missing. */
export function namespaceOf(object: { metadata?: { namespace?: string | undefined } | undefined }): string {
  return object.metadata?.namespace ?? "default";
}

/** "namespace/name", for messages and lookups. */
export function refOf(object: { metadata?: { namespace?: string | undefined; name?: string | undefined } | undefined }): string {
  return `${namespaceOf(object)}/${object.metadata?.name ?? "?"}`;
}

/** A name without "/" means a plugin in velero.io (Velero's sanitizeName). */
export function normalizeProvider(provider: string): string {
  return provider.includes("/") ? provider : `velero.io/${provider}`;
}

export const LVP_PROVIDERS = ["replicated.com/hostpath", "replicated.com/nfs", "replicated.com/pvc"];
export const KNOWN_PROVIDERS = ["velero.io/aws", "velero.io/gcp", "velero.io/azure", ...LVP_PROVIDERS];
