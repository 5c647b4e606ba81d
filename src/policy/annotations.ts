/** app-snapshots' own labels and annotations (the appsnapshots.io API). */

/** Set on every pod a policy applied to: `<namespace>/<name>` or `cluster/<name>`. */
export const POLICY_ANNOTATION = "appsnapshots.io/policy";
/** `"true"` on a pod or namespace: app-snapshots leaves its pods alone. */
export const IGNORE_LABEL = "appsnapshots.io/ignore";
/** Static pods mirrored by the kubelet carry this; they cannot be changed through the API. */
export const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";
/**
 * The annotation groups app-snapshots wrote itself, comma-separated ("backup-volumes",
 * "backup-volumes-excludes", "pre-backup", "post-backup", "post-restore", "restore-hook"). When the webhook sees the
 * pod again (reinvocation, or a pod restored from a backup) it recomputes exactly these and treats
 * every other Velero annotation as the user's.
 */
export const MANAGED_ANNOTATION = "appsnapshots.io/managed";
/**
 * The init container of a policy's initRestore hook, as JSON, written when the pod is admitted and
 * backed up with it; app-snapshots inserts it when Velero restores the pod (src/pods/restoreHook.ts).
 */
export const RESTORE_HOOK_ANNOTATION = "appsnapshots.io/restore-hook";
