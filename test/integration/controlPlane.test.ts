import { execFileSync } from "node:child_process";
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, VersionApi } from "@kubernetes/client-node";
import { describe, expect, inject, it } from "vitest";
import { identityKubeConfig } from "../cluster/controlPlane.js";
import { pinnedVersions, toolPath } from "../cluster/binaries.js";

const cluster = inject("cluster");
const kc = new KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

describe("the local control plane", () => {
  it("is the pinned upstream kube-apiserver, listening on loopback", async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(pinnedVersions().KUBERNETES);
    expect(cluster.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("stores a namespace and a pod and reads them back", async () => {
    const namespace = unique("cp");
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const ns = await core.readNamespace({ name: namespace });
    // The apiserver itself sets this label; namespaceSelector rules depend on it.
    expect(ns.metadata?.labels?.["kubernetes.io/metadata.name"]).toBe(namespace);

    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: "web", labels: { app: "web" } }, spec: { containers: [{ name: "nginx", image: "nginx:1.27" }] } },
    });
    const pod = await core.readNamespacedPod({ namespace, name: "web" });
    expect(pod.spec?.containers[0]?.image).toBe("nginx:1.27");
    expect(pod.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    // No scheduler or kubelet: the pod stays Pending forever, which is all admission tests need.
    expect(pod.status?.phase).toBe("Pending");
  });

  it("serves the Velero CRDs and stores a BackupStorageLocation", async () => {
    const namespace = unique("velero");
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const bsl = {
      apiVersion: "velero.io/v1",
      kind: "BackupStorageLocation",
      metadata: { name: "default" },
      spec: {
        provider: "aws",
        objectStorage: { bucket: "backups", prefix: "cluster-a" },
        config: { region: "minio", s3ForcePathStyle: "true", s3Url: "http://storage.example:9000" },
      },
    };
    await custom.createNamespacedCustomObject({ group: "velero.io", version: "v1", namespace, plural: "backupstoragelocations", body: bsl });
    const stored = (await custom.getNamespacedCustomObject({
      group: "velero.io",
      version: "v1",
      namespace,
      plural: "backupstoragelocations",
      name: "default",
    })) as { spec: { objectStorage: { bucket: string } } };
    expect(stored.spec.objectStorage.bucket).toBe("backups");

    // The real CRD schema is enforced: objectStorage.bucket is required upstream.
    const broken = { ...bsl, metadata: { name: "broken" }, spec: { provider: "aws", objectStorage: {} } };
    const error: unknown = await custom
      .createNamespacedCustomObject({ group: "velero.io", version: "v1", namespace, plural: "backupstoragelocations", body: broken })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<unknown>).code).toBe(422);
    expect(String((error as ApiException<unknown>).body)).toContain("spec.objectStorage.bucket");
  });

  it("does a server-side dry-run create without persisting", async () => {
    const namespace = unique("dry");
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const created = await core.createNamespacedConfigMap({ namespace, dryRun: "All", body: { metadata: { name: "preview" }, data: { a: "1" } } });
    expect(created.metadata?.name).toBe("preview");
    expect(created.data).toEqual({ a: "1" });
    const error = await core.readNamespacedConfigMap({ namespace, name: "preview" }).catch((err: unknown) => err);
    expect((error as ApiException<unknown>).code).toBe(404);
  });

  it("enforces RBAC: an unprivileged identity is denied, the admin is not", async () => {
    const alice = identityKubeConfig(cluster, "alice", ["dev-team"]).makeApiClient(CoreV1Api);
    const error = await alice.listNamespace().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<unknown>).code).toBe(403);
    expect(String((error as ApiException<unknown>).body)).toContain('User \\"alice\\" cannot list resource \\"namespaces\\"');
    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain("kube-system");
  });

  it("accepts its kubeconfig from kubectl and helm", () => {
    const out = execFileSync(toolPath("kubectl"), ["--kubeconfig", cluster.kubeconfigPath, "get", "crd", "backupstoragelocations.velero.io", "-o", "name"], {
      encoding: "utf8",
    });
    expect(out.trim()).toBe("customresourcedefinition.apiextensions.k8s.io/backupstoragelocations.velero.io");
    const helm = execFileSync(toolPath("helm"), ["--kubeconfig", cluster.kubeconfigPath, "list", "--all-namespaces", "-o", "json"], { encoding: "utf8" });
    expect(JSON.parse(helm)).toEqual([]);
  });
});
