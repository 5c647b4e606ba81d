import { stringify } from "yaml";
import { GO_DURATION_PATTERN } from "../velero/duration.js";
import { DEFAULT_SOURCES, NEVER_BACKED_UP_SOURCES, SELECTABLE_SOURCES } from "../velero/volumes.js";
import { POLICY_GROUP, POLICY_VERSION } from "./types.js";

/**
 * The SnapshotPolicy and ClusterSnapshotPolicy CRDs, generated from the same lists and patterns the
 * TypeScript schema uses, so the two cannot drift. `app-snapshots crds` prints them; the chart's
 * crds/ file is that output (a unit test keeps it in sync).
 */

type Schema = Record<string, unknown>;

const str = (extra: Schema = {}): Schema => ({ type: "string", ...extra });
const duration = (description: string): Schema => str({ pattern: GO_DURATION_PATTERN, maxLength: 64, description });
const command: Schema = {
  type: "array",
  minItems: 1,
  maxItems: 64,
  items: str({ maxLength: 4096 }),
  description: "The command as an argv list (no shell). Written to the pod as a JSON array, the only form Velero splits into arguments.",
};
const containerName = (description: string): Schema => str({ maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description });
const onError = (fallback: string): Schema => str({ enum: ["Continue", "Fail"], default: fallback, description: `What Velero does when the hook fails (default ${fallback}).` });

const labelSelector = (description: string): Schema => ({
  type: "object",
  description,
  "x-kubernetes-map-type": "atomic",
  properties: {
    matchLabels: { type: "object", additionalProperties: str() },
    matchExpressions: {
      type: "array",
      maxItems: 32,
      items: {
        type: "object",
        required: ["key", "operator"],
        properties: {
          key: str({ maxLength: 317 }),
          operator: str({ enum: ["In", "NotIn", "Exists", "DoesNotExist"] }),
          values: { type: "array", maxItems: 64, items: str({ maxLength: 63 }) },
        },
        "x-kubernetes-validations": [
          {
            rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
            message: "In and NotIn need values; Exists and DoesNotExist take none",
          },
        ],
      },
    },
  },
});

const backupHook = (phase: string): Schema => ({
  type: "object",
  description: `The ${phase} hook, written as ${phase === "pre-backup" ? "pre" : "post"}.hook.backup.velero.io/* annotations.`,
  required: ["command"],
  properties: {
    container: containerName("Container to run in; default: the pod's first container (written explicitly)."),
    command,
    onError: onError("Fail"),
    timeout: duration("How long Velero waits for the command (Go duration; Velero's default 30s)."),
  },
});

function specSchema(cluster: boolean): Schema {
  const globs = (fallback: string[], description: string): Schema => ({ type: "array", maxItems: 64, default: fallback, items: str({ minLength: 1, maxLength: 253 }), description });
  return {
    type: "object",
    default: {},
    properties: {
      ...(cluster ? { namespaceSelector: labelSelector("Namespaces (by their labels) whose pods this policy applies to; omitted = all.") } : {}),
      podSelector: labelSelector("Pods (by their labels) this policy applies to; omitted = every pod in scope."),
      volumes: {
        type: "object",
        default: {},
        description: "Which pod volumes Velero's file-system backup takes.",
        properties: {
          mode: str({
            enum: ["OptIn", "OptOut", "None"],
            default: "OptIn",
            description: "OptIn writes backup.velero.io/backup-volumes; OptOut (Velero with default-volumes-to-fs-backup) writes backup-volumes-excludes; None writes neither.",
          }),
          include: globs(["*"], "Glob patterns (* and ?) on pod volume names (spec.volumes[].name, not PVC names)."),
          exclude: globs([], "Glob patterns on pod volume names to leave out."),
          sources: {
            type: "array",
            maxItems: 32,
            "x-kubernetes-list-type": "set",
            default: [...DEFAULT_SOURCES],
            items: str({ enum: [...SELECTABLE_SOURCES, ...NEVER_BACKED_UP_SOURCES] }),
            description: "Volume source types that may be selected.",
            "x-kubernetes-validations": [
              {
                rule: `!self.exists(s, s in [${NEVER_BACKED_UP_SOURCES.map((s) => `'${s}'`).join(", ")}])`,
                message: `Velero never backs up ${NEVER_BACKED_UP_SOURCES.join(", ")} volumes; remove them from sources`,
              },
            ],
          },
        },
      },
      hooks: {
        type: "object",
        default: {},
        description: "Velero hooks, written as pod annotations (restore hooks must be on the pod before the backup).",
        properties: {
          preBackup: backupHook("pre-backup"),
          postBackup: backupHook("post-backup"),
          postRestore: {
            type: "object",
            description: "Runs in the restored pod, written as post.hook.restore.velero.io/* annotations.",
            required: ["command"],
            properties: {
              container: containerName("Container to run in; default: the pod's first container (written explicitly)."),
              command,
              onError: onError("Continue"),
              execTimeout: duration("How long the command may run (Velero's default 30s)."),
              waitTimeout: duration("How long Velero waits for the container to be ready (default: forever)."),
              waitForReady: { type: "boolean", description: "Wait until the container is ready before running the command." },
            },
          },
          initRestore: {
            type: "object",
            description: "An init container Velero adds to the restored pod (after restore-wait), written as init.hook.restore.velero.io/* annotations.",
            required: ["image", "command"],
            properties: {
              image: str({ minLength: 1, maxLength: 512 }),
              name: { ...containerName("Init container name."), default: "restore-hook" },
              command,
            },
          },
        },
      },
    },
  };
}

function crd(kind: string, plural: string, scope: "Namespaced" | "Cluster", shortName: string): Schema {
  const cluster = scope === "Cluster";
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${POLICY_GROUP}`, labels: { "app.kubernetes.io/part-of": "app-snapshots" } },
    spec: {
      group: POLICY_GROUP,
      scope,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames: [shortName], categories: ["app-snapshots"] },
      versions: [
        {
          name: POLICY_VERSION,
          served: true,
          storage: true,
          additionalPrinterColumns: [
            { name: "Mode", type: "string", jsonPath: ".spec.volumes.mode" },
            { name: "Include", type: "string", jsonPath: ".spec.volumes.include", priority: 1 },
            { name: "Pre-Backup", type: "string", jsonPath: ".spec.hooks.preBackup.command", priority: 1 },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: cluster
                ? "Tells app-snapshots how to annotate pods for Velero, for pods of every namespace matched by namespaceSelector."
                : "Tells app-snapshots how to annotate the pods of its namespace for Velero: which volumes to back up and which hooks to run.",
              properties: {
                apiVersion: str(),
                kind: str(),
                metadata: { type: "object" },
                spec: specSchema(cluster),
              },
            },
          },
        },
      ],
    },
  };
}

export function policyCrds(): Schema[] {
  return [
    crd("SnapshotPolicy", "snapshotpolicies", "Namespaced", "snappol"),
    crd("ClusterSnapshotPolicy", "clustersnapshotpolicies", "Cluster", "csnappol"),
  ];
}

export function policyCrdsYaml(): string {
  const header = "# Generated by `app-snapshots crds` (src/policy/crd.ts); do not edit. `make crds` rewrites it.\n";
  return header + policyCrds().map((c) => `---\n${stringify(c, { lineWidth: 0 })}`).join("");
}
