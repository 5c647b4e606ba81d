import type { KubeConfig } from "@kubernetes/client-node";

/**
 * The kubeconfig from a file, or in-cluster / $KUBECONFIG / ~/.kube/config. The client library is
 * imported here on first use, not at start-up: it is large, and a process that never calls the API
 * (the storage roles with a key file) should not carry its heap, whose garbage-collection marking
 * measurably slowed large downloads.
 */
export async function loadKubeConfig(file?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}
