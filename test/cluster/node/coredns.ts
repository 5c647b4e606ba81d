// Cluster DNS: CoreDNS on the host, bound to the bridge address (kubelet's clusterDNS), answering for
// cluster.local from the apiserver. No upstream: names outside the cluster do not resolve, as nothing may leave
// the machine.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { applyObjects } from "../../../src/kube/apply.js";
import { cacheDir, repoRoot } from "../binaries.js";
import { BRIDGE_IP } from "./layout.js";

export const CLUSTER_DOMAIN = "cluster.local";
export const COREDNS_USER = "app-snapshots:coredns";

/** .cache/bin/coredns-<version>, the version pinned in test/cluster/node/coredns/go.mod (built by make node-tools). */
export function corednsPath(): string {
  const goMod = readFileSync(path.join(repoRoot, "test", "cluster", "node", "coredns", "go.mod"), "utf8");
  const version = /github\.com\/coredns\/coredns (v\S+)/.exec(goMod)?.[1];
  if (!version) throw new Error("test/cluster/node/coredns/go.mod pins no github.com/coredns/coredns");
  const file = path.join(cacheDir, "bin", `coredns-${version}`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'make node-tools' (it builds CoreDNS ${version})`);
  return file;
}

export function corefile(kubeconfig: string, readyPort: number): string {
  return [
    ".:53 {",
    `  bind ${BRIDGE_IP}`,
    "  errors",
    `  ready 127.0.0.1:${readyPort}`,
    `  kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {`,
    `    kubeconfig ${kubeconfig}`,
    "    pods insecure",
    "    ttl 5",
    "  }",
    "  cache 5",
    "}",
    "",
  ].join("\n");
}

/** What CoreDNS's kubernetes plugin reads (its documented RBAC), granted to its client certificate's user. */
export async function grantCoredns(kc: KubeConfig): Promise<void> {
  const objects: KubernetesObject[] = [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: COREDNS_USER },
      rules: [
        { apiGroups: [""], resources: ["endpoints", "services", "pods", "namespaces"], verbs: ["list", "watch"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
      ],
    } as KubernetesObject,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: COREDNS_USER },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: COREDNS_USER },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: COREDNS_USER }],
    } as KubernetesObject,
  ];
  await applyObjects(kc, objects);
}
