import { ApiextensionsV1Api, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { kubeRequest } from "./request.js";

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

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/** The REST path of an object, found through discovery (cached per group/version). */
async function objectPath(kc: KubeConfig, object: KubernetesObject, cache: Map<string, ApiResource[]>): Promise<string> {
  const apiVersion = object.apiVersion!;
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  let resources = cache.get(apiVersion);
  if (!resources) {
    resources = ((await kubeRequest(kc, "GET", base)).body as { resources: ApiResource[] }).resources;
    cache.set(apiVersion, resources);
  }
  const resource = resources.find((r) => r.kind === object.kind && !r.name.includes("/"));
  if (!resource) throw new Error(`the apiserver does not serve ${object.kind} in ${apiVersion}`);
  const name = encodeURIComponent(object.metadata!.name!);
  const namespace = object.metadata?.namespace ?? "default";
  return resource.namespaced ? `${base}/namespaces/${encodeURIComponent(namespace)}/${resource.name}/${name}` : `${base}/${resource.name}/${name}`;
}

/**
 * Server-side apply, in order, with our field manager. Raw JSON on purpose: the typed client's
 * serializer silently drops CRD schema fields such as `default` and `x-kubernetes-validations`.
 */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[], options: { dryRun?: boolean } = {}): Promise<KubernetesObject[]> {
  const cache = new Map<string, ApiResource[]>();
  const applied: KubernetesObject[] = [];
  for (const object of objects) {
    const query = `?fieldManager=${FIELD_MANAGER}&force=true${options.dryRun ? "&dryRun=All" : ""}`;
    const path = (await objectPath(kc, object, cache)) + query;
    applied.push((await kubeRequest(kc, "PATCH", path, object, "application/apply-patch+yaml")).body as KubernetesObject);
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
