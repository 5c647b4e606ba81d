import { namespaceLabels, type ClusterState } from "../admission/state.js";
import { matchesSelector } from "../policy/selectors.js";
import { policyRef, type Policy } from "../policy/types.js";
import type { Pod } from "./pod.js";

export interface PolicyChoice {
  policy: Policy | undefined;
  /** Policies that matched too but lost to the first one. */
  ignored: Policy[];
}

/** Namespaced policies first, then cluster policies, each in name order; the first match wins. */
export function choosePolicy(pod: Pod, namespace: string, state: ClusterState): PolicyChoice {
  const labels = pod.metadata?.labels;
  const matches: Policy[] = [];
  for (const policy of state.policiesByNamespace.get(namespace) ?? []) {
    if (matchesSelector(policy.spec.podSelector, labels)) matches.push(policy);
  }
  const nsLabels = namespaceLabels(state, namespace);
  for (const policy of state.clusterPolicies) {
    if (matchesSelector(policy.spec.namespaceSelector, nsLabels) && matchesSelector(policy.spec.podSelector, labels)) matches.push(policy);
  }
  return { policy: matches[0], ignored: matches.slice(1) };
}

export function ignoredPoliciesWarning(choice: PolicyChoice): string | undefined {
  if (!choice.policy || choice.ignored.length === 0) return undefined;
  return `policy ${policyRef(choice.policy)} applied; also matching, ignored: ${choice.ignored.map(policyRef).join(", ")}`;
}
