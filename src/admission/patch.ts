import jsonPatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";

/** RFC 6902 operations turning `original` into `mutated`; only what changed is touched. */
export function diffPatch(original: unknown, mutated: unknown): Operation[] {
  return jsonPatch.compare(original as object, mutated as object);
}

export function encodePatch(operations: readonly Operation[]): string {
  return Buffer.from(JSON.stringify(operations)).toString("base64");
}

/** Applies a patch to a copy, as the apiserver would; throws if an operation does not apply. */
export function applyPatch<T>(document: T, operations: readonly Operation[]): T {
  return jsonPatch.applyPatch(structuredClone(document), operations as Operation[], true, false).newDocument;
}
