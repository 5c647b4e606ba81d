import { parsePolicy, type ClusterSnapshotPolicy, type SnapshotPolicy } from "../policy/types.js";

/**
 * The cluster objects a decision needs, as one immutable snapshot. The webhook rebuilds it from
 * informers when something changes; `review` and `explain` build it from YAML files.
 */
export interface ClusterState {
  /** SnapshotPolicies per namespace, each list in name order. */
  readonly policiesByNamespace: ReadonlyMap<string, readonly SnapshotPolicy[]>;
  /** ClusterSnapshotPolicies in name order. */
  readonly clusterPolicies: readonly ClusterSnapshotPolicy[];
  /** Namespace labels by namespace name. */
  readonly namespaces: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Pods in the webhook's own namespace are never mutated (self-mutation deadlocks). */
  readonly webhookNamespace: string | undefined;
  /** Objects that could not be used, with the reason (shown by the CLI, logged by the webhook). */
  readonly problems: readonly string[];
}

export interface StateInput {
  objects: readonly unknown[];
  webhookNamespace?: string | undefined;
}

const byName = (a: { metadata: { name: string } }, b: { metadata: { name: string } }) =>
  a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;

export function buildClusterState(input: StateInput): ClusterState {
  const policiesByNamespace = new Map<string, SnapshotPolicy[]>();
  const clusterPolicies: ClusterSnapshotPolicy[] = [];
  const namespaces = new Map<string, Record<string, string>>();
  const problems: string[] = [];

  for (const object of input.objects) {
    const kind = (object as { kind?: unknown } | null)?.kind;
    if (kind === "SnapshotPolicy" || kind === "ClusterSnapshotPolicy") {
      try {
        const policy = parsePolicy(object);
        if (policy.kind === "SnapshotPolicy") {
          const list = policiesByNamespace.get(policy.metadata.namespace) ?? [];
          list.push(policy);
          policiesByNamespace.set(policy.metadata.namespace, list);
        } else {
          clusterPolicies.push(policy);
        }
      } catch (err) {
        problems.push((err as Error).message);
      }
    } else if (kind === "Namespace") {
      const metadata = (object as { metadata?: { name?: string; labels?: Record<string, string> } }).metadata;
      if (metadata?.name) namespaces.set(metadata.name, { "kubernetes.io/metadata.name": metadata.name, ...(metadata.labels ?? {}) });
    }
  }
  for (const list of policiesByNamespace.values()) list.sort(byName);
  clusterPolicies.sort(byName);
  return { policiesByNamespace, clusterPolicies, namespaces, webhookNamespace: input.webhookNamespace, problems };
}

/** Labels of a namespace; one the state has not seen yet still carries the label the apiserver always sets. */
export function namespaceLabels(state: ClusterState, namespace: string): Readonly<Record<string, string>> {
  return state.namespaces.get(namespace) ?? { "kubernetes.io/metadata.name": namespace };
}
