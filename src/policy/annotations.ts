/** app-snapshots' own labels and annotations (the appsnapshots.io API). */

/** Set on every pod a policy applied to: `<namespace>/<name>` or `cluster/<name>`. */
export const POLICY_ANNOTATION = "appsnapshots.io/policy";
/** `"true"` on a pod or namespace: app-snapshots leaves its pods alone. */
export const IGNORE_LABEL = "appsnapshots.io/ignore";
/** Static pods mirrored by the kubelet carry this; they cannot be changed through the API. */
export const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";
