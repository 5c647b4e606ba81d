import jsonPatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";

export type { Operation };

/** RFC 6902 operations turning `original` into `mutated`; only what changed is touched. */
export function diffPatch(original: unknown, mutated: unknown): Operation[] {
  return jsonPatch.compare(original as object, mutated as object);
}

const escapePointer = (segment: string) => segment.replace(/~/g, "~0").replace(/\//g, "~1");

/**
 * The diff of one subtree, at its JSON Pointer `path` (segments unescaped). Decisions share every
 * unchanged subtree with the original, so diffing only the subtrees a rule may change gives the
 * same patch as diffing the whole objects, without walking a large object twice per request.
 */
export function diffSubtree(path: string[], before: unknown, after: unknown): Operation[] {
  if (before === after) return [];
  const pointer = "/" + path.map(escapePointer).join("/");
  if (before === undefined) return [{ op: "add", path: pointer, value: after }];
  if (after === undefined) return [{ op: "remove", path: pointer }];
  if (typeof before !== "object" || typeof after !== "object" || before === null || after === null || Array.isArray(before) !== Array.isArray(after)) {
    return [{ op: "replace", path: pointer, value: after }];
  }
  return diffPatch(before, after).map((op) => ({ ...op, path: pointer + op.path }) as Operation);
}

export function encodePatch(operations: readonly Operation[]): string {
  return Buffer.from(JSON.stringify(operations)).toString("base64");
}

/** Applies a patch to a copy, as the apiserver would; throws if an operation does not apply. */
export function applyPatch<T>(document: T, operations: readonly Operation[]): T {
  return jsonPatch.applyPatch(structuredClone(document), operations as Operation[], true, false).newDocument;
}
