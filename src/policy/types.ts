import { z } from "zod";
import { isGoDuration } from "../velero/duration.js";
import { NEVER_BACKED_UP_SOURCES, SELECTABLE_SOURCES, DEFAULT_SOURCES } from "../velero/volumes.js";
import { RESTORE_WAIT_CONTAINERS } from "../velero/annotations.js";
import { MAX_GLOB_LENGTH, MAX_GLOB_STARS } from "./glob.js";

export const POLICY_GROUP = "appsnapshots.io";
export const POLICY_VERSION = "v1alpha1";
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;

const labelSelector = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.object({
        key: z.string(),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
export type LabelSelector = z.infer<typeof labelSelector>;

const duration = z.string().refine(isGoDuration, { message: "must be a Go duration such as 30s, 5m or 1h30m" });
const command = z.array(z.string()).min(1, { message: "command needs at least one element" });
const onError = z.enum(["Continue", "Fail"]);

const sources = z
  .array(z.string())
  .refine((list) => !list.some((s) => (NEVER_BACKED_UP_SOURCES as readonly string[]).includes(s)), {
    message: `Velero never backs up ${NEVER_BACKED_UP_SOURCES.join(", ")} volumes`,
  })
  .pipe(z.array(z.enum(SELECTABLE_SOURCES)));

/** Volume-name globs, bounded like the CRD so matching cost stays small (glob.ts). */
const glob = z
  .string()
  .min(1)
  .max(MAX_GLOB_LENGTH)
  .refine((p) => p.split("*").length - 1 <= MAX_GLOB_STARS, { message: `at most ${MAX_GLOB_STARS} "*" per pattern` });
const globs = z.array(glob).max(64);

const backupHook = z.object({
  container: z.string().optional(),
  command,
  onError: onError.default("Fail"),
  timeout: duration.optional(),
});

const spec = z.object({
  podSelector: labelSelector.optional(),
  volumes: z
    .object({
      mode: z.enum(["OptIn", "OptOut", "None"]).default("OptIn"),
      include: globs.default(["*"]),
      exclude: globs.default([]),
      sources: sources.default([...DEFAULT_SOURCES] as (typeof SELECTABLE_SOURCES)[number][]),
    })
    .prefault({}),
  hooks: z
    .object({
      preBackup: backupHook.optional(),
      postBackup: backupHook.optional(),
      postRestore: z
        .object({
          container: z.string().optional(),
          command,
          onError: onError.default("Continue"),
          execTimeout: duration.optional(),
          waitTimeout: duration.optional(),
          waitForReady: z.boolean().optional(),
        })
        .optional(),
      initRestore: z
        .object({
          image: z.string().min(1),
          name: z
            .string()
            .min(1)
            .refine((n) => !(RESTORE_WAIT_CONTAINERS as readonly string[]).includes(n), { message: "restore-wait and restic-wait are Velero's" })
            .default("restore-hook"),
          command,
          volumeMounts: z
            .array(z.object({ name: z.string().min(1), mountPath: z.string().min(1).optional(), subPath: z.string().optional() }))
            .max(32)
            .optional(),
          runAsUser: z.number().int().min(1).optional(),
        })
        .optional(),
    })
    .prefault({}),
});

const metadata = z.object({ name: z.string().min(1), namespace: z.string().optional() }).loose();

export const snapshotPolicySchema = z.object({
  apiVersion: z.literal(POLICY_API_VERSION),
  kind: z.literal("SnapshotPolicy"),
  metadata: metadata.extend({ namespace: z.string().min(1) }),
  spec: spec.prefault({}),
});

export const clusterSnapshotPolicySchema = z.object({
  apiVersion: z.literal(POLICY_API_VERSION),
  kind: z.literal("ClusterSnapshotPolicy"),
  metadata,
  spec: spec.extend({ namespaceSelector: labelSelector.optional() }).prefault({}),
});

export type SnapshotPolicy = z.infer<typeof snapshotPolicySchema>;
export type ClusterSnapshotPolicy = z.infer<typeof clusterSnapshotPolicySchema>;
export type Policy = SnapshotPolicy | ClusterSnapshotPolicy;
export type PolicySpec = z.infer<typeof spec>;
export type BackupHook = z.infer<typeof backupHook>;
export type Hooks = PolicySpec["hooks"];
export type InitRestoreHook = NonNullable<Hooks["initRestore"]>;

/** `namespace/name` for a SnapshotPolicy, `cluster/name` for a ClusterSnapshotPolicy (the value of appsnapshots.io/policy). */
export function policyRef(policy: Policy): string {
  return policy.kind === "SnapshotPolicy" ? `${policy.metadata.namespace}/${policy.metadata.name}` : `cluster/${policy.metadata.name}`;
}

/** Parses a policy object with the CRD's defaults applied; the error names the policy and the field. */
export function parsePolicy(object: unknown): Policy {
  const kind = (object as { kind?: unknown } | null)?.kind;
  const schema = kind === "ClusterSnapshotPolicy" ? clusterSnapshotPolicySchema : snapshotPolicySchema;
  const result = schema.safeParse(object);
  if (result.success) return result.data;
  const name = (object as { metadata?: { name?: string } } | null)?.metadata?.name ?? "(unnamed)";
  const issue = result.error.issues[0]!;
  throw new Error(`${typeof kind === "string" ? kind : "policy"} ${name}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
}
