import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { buildClusterState, type ClusterState } from "../admission/state.js";

/** Reads a file, or standard input for "-". */
export function readInput(file: string): string {
  return readFileSync(file === "-" ? 0 : file, "utf8");
}

/** Objects from multi-document YAML (or JSON); `kind: List` documents are unpacked. */
export function objectsFromYaml(text: string, source: string): unknown[] {
  return parseAllDocuments(text).flatMap((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${source}: document ${index + 1}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return [];
    const items = (value as { kind?: string; items?: unknown[] }).kind?.endsWith("List") ? ((value as { items?: unknown[] }).items ?? []) : [value];
    return items;
  });
}

/** The ClusterState a set of `--state` files describes. */
export function loadStateFiles(files: readonly string[], webhookNamespace?: string): ClusterState {
  const objects = files.flatMap((file) => objectsFromYaml(readInput(file), file));
  return buildClusterState({ objects, webhookNamespace });
}
