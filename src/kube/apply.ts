import { ApiextensionsV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

export const FIELD_MANAGER = "app-snapshots";

/** Every non-empty document of a multi-document YAML text, as plain objects. */
export function parseManifests(text: string, source = "input"): KubernetesObject[] {
  return parseAllDocuments(text).flatMap((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${source}: document ${index + 1}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return [];
    if (typeof value !== "object" || Array.isArray(value) || !("kind" in value) || !("apiVersion" in value)) {
      throw new Error(`${source}: document ${index + 1} is not a Kubernetes object (needs apiVersion and kind)`);
    }
    return [value as KubernetesObject];
  });
}

/** Server-side apply, in order, with our field manager. */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[], options: { dryRun?: boolean } = {}): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  const applied: KubernetesObject[] = [];
  for (const object of objects) {
    applied.push(
      await client.patch(object, undefined, options.dryRun ? "All" : undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
  }
  return applied;
}

/** Waits until every named CRD reports Established, so its resources can be created right away. */
export async function waitForCrdsEstablished(kc: KubeConfig, names: string[], timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
