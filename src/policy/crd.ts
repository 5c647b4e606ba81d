import { stringify } from "yaml";
import { GO_DURATION_PATTERN } from "../velero/duration.js";
import { DEFAULT_SOURCES, NEVER_BACKED_UP_SOURCES, SELECTABLE_SOURCES } from "../velero/volumes.js";
import { MAX_GLOB_LENGTH, MAX_GLOB_STARS } from "./glob.js";
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
  // Bounded so that matching stays cheap (src/policy/glob.ts): length, count and number of "*".
  const globs = (fallback: string[], description: string): Schema => ({
    type: "array",
    maxItems: 64,
    default: fallback,
    items: str({
      minLength: 1,
      maxLength: MAX_GLOB_LENGTH,
      "x-kubernetes-validations": [{ rule: `!self.matches('^([^*]*[*]){${MAX_GLOB_STARS + 1}}')`, message: `at most ${MAX_GLOB_STARS} "*" per pattern` }],
    }),
    description,
  });
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
            description:
              "OptIn and OptOut both write backup.velero.io/backup-volumes (the selected volumes) and backup.velero.io/backup-volumes-excludes (every other volume Velero could take), so a pod gets the same volumes whether a Backup uses defaultVolumesToFsBackup or not; the two values are kept for compatibility and mean the same. None writes neither (the Backup's mode decides alone).",
          }),
          include: globs(
            ["*"],
            "Glob patterns (* and ?) on pod volume names (spec.volumes[].name, not PVC names). Memory-backed emptyDirs (/dev/shm) and secrets-store CSI volumes are selected only when named here literally, never by a wildcard.",
          ),
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
        description:
          "Velero hooks. Exec hooks are written as pod annotations (restore hooks must be on the pod before the backup); a pod that sets one hook of the pre-/post-backup pair itself gets neither from the policy.",
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
            description:
              "An init container app-snapshots' pod webhook inserts into every pod Velero restores (label velero.io/restore-name), right after Velero's restore-wait, with the volume mounts below and a Pod Security restricted securityContext (the application container's, hardened). The container is computed when the pod is created and travels in the backup as the pod annotation appsnapshots.io/restore-hook, so the restore needs no policy (Velero restores pods before custom resources). It is not written as init.hook.restore.velero.io annotations: Velero builds those containers with image, name and command only (no volume mounts, no securityContext). The webhook must be running during the restore.",
            required: ["image", "command"],
            properties: {
              image: str({ minLength: 1, maxLength: 512 }),
              name: {
                ...containerName("Init container name."),
                default: "restore-hook",
                "x-kubernetes-validations": [{ rule: "!(self in ['restore-wait', 'restic-wait'])", message: "restore-wait and restic-wait are Velero's" }],
              },
              command,
              volumeMounts: {
                type: "array",
                maxItems: 32,
                description: "Pod volumes to mount; default: every volume the policy selects, at the path (and subPath) the application container mounts it.",
                items: {
                  type: "object",
                  required: ["name"],
                  properties: {
                    name: str({ maxLength: 63, description: "A pod volume name (spec.volumes[].name)." }),
                    mountPath: str({ minLength: 1, maxLength: 4096, description: "Default: where the application container mounts the volume." }),
                    subPath: str({ maxLength: 4096 }),
                  },
                },
              },
              runAsUser: {
                type: "integer",
                format: "int64",
                minimum: 1,
                description: "The uid the hook runs as; default: the application container's runAsUser, else the pod's, else 1000.",
              },
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
