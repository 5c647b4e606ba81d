import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { KubeRequestError, kubeRequest } from "../kube/request.js";

export interface Secret extends KubernetesObject {
  type?: string;
  data?: Record<string, string>;
}

export const secretsOf = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;

/**
 * Creates or replaces one of our certificate Secrets with these keys (others kept), by optimistic
 * concurrency: the written Secret, or undefined when another writer changed it first.
 */
export async function writeTlsSecret(kc: KubeConfig, namespace: string, name: string, previous: Secret | undefined, data: Record<string, string>): Promise<Secret | undefined> {
  const collection = secretsOf(namespace);
  const metadata = {
    ...(previous?.metadata ?? {}),
    name,
    namespace,
    // Velero leaves it out of backups: a CA's private key or a serving key does not belong in the store, and a
    // restored cluster's webhook makes new ones (docs/certificates.md). pkg/backup/item_backupper.go skips items with this label.
    labels: { ...(previous?.metadata?.labels ?? {}), "app.kubernetes.io/managed-by": "app-snapshots", "velero.io/exclude-from-backup": "true" },
  };
  // A Secret's type cannot change; one made by an admin as Opaque keeps its type.
  const body = { apiVersion: "v1", kind: "Secret", type: previous?.type ?? "kubernetes.io/tls", metadata, data: { ...(previous?.data ?? {}), ...data } };
  try {
    const response = previous ? await kubeRequest(kc, "PUT", `${collection}/${encodeURIComponent(name)}`, body) : await kubeRequest(kc, "POST", collection, body);
    return response.body as Secret;
  } catch (err) {
    if (err instanceof KubeRequestError && err.status === 409) return undefined;
    throw err;
  }
}
