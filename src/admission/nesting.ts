/**
 * How deep an AdmissionRequest may nest before it is answered without being judged.
 *
 * JSON.parse reads any depth, but much of what runs after it recurses (JSON.stringify of a spec,
 * structuredClone, template strings of arrays, zod): a spec nested 100,000 arrays deep overflowed
 * the stack (found by the admission fuzzer). Real objects are nowhere near the limit: they follow
 * their schemas, and the deepest paths are about a dozen levels (a Pod's
 * spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[].preference.matchExpressions[].values[]
 * is 9; a Restore's spec.hooks.resources[].postHooks[].init.initContainers[] holds Containers, about
 * 15 in all), and the request adds one (request.object). 100 leaves room for the free-form fields a
 * CRD may keep (x-kubernetes-preserve-unknown-fields) while every code path stays far from the stack limit.
 */
export const MAX_REQUEST_DEPTH = 100;

/**
 * Whether `value` nests more than `limit` arrays or objects deep (a scalar is 0 deep, `[]` is 1).
 * One pass with an explicit stack, so no depth can overflow it; it stops at the first container past the limit.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const { node, depth } = top;
    if (node === null || typeof node !== "object") continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push({ node: child, depth: depth + 1 });
  }
  return false;
}
