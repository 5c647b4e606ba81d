/**
 * The ServiceAccounts Velero's server runs as: "velero" from `velero install`
 * (pkg/install/resources.go, defaultServiceAccountName) and "<fullname>-server" from Velero's Helm
 * chart (charts/velero templates/_helpers.tpl, velero.serverServiceAccount), "velero-server" for a
 * release named velero. The chart's webhook.velero.serviceAccounts defaults to these.
 */
export const DEFAULT_VELERO_SERVICE_ACCOUNTS = ["velero", "velero-server"] as const;
export const DEFAULT_VELERO_NAMESPACE = "velero";

/** The username the apiserver gives a ServiceAccount's requests (request.userInfo.username). */
export const serviceAccountUsername = (namespace: string, name: string) => `system:serviceaccount:${namespace}:${name}`;

export const DEFAULT_VELERO_USERNAMES: readonly string[] = DEFAULT_VELERO_SERVICE_ACCOUNTS.map((name) => serviceAccountUsername(DEFAULT_VELERO_NAMESPACE, name));

const USERNAME = /^system:serviceaccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;

/** A --velero-service-account value: the full username, or why not. */
export function serviceAccountUsernameProblem(text: string): string | undefined {
  return USERNAME.test(text) ? undefined : `"${text}" is not a ServiceAccount username (system:serviceaccount:<namespace>:<name>)`;
}
