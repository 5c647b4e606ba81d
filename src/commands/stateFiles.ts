import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { buildClusterState, type ClusterState } from "../admission/state.js";

/** The usual reasons a file cannot be read, in words; anything else keeps the system's message. */
const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
};

/** How messages name a file argument. */
export const inputName = (file: string): string => (file === "-" ? "standard input" : file);

/** Reads a file, or standard input for "-"; the error names the file and says why, without a stack. */
export function readInput(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    throw new Error(`cannot read ${inputName(file)}: ${(code && READ_ERRORS[code]) ?? message}`, { cause: err });
  }
}

/** Objects from multi-document YAML (or JSON); `kind: List` documents are unpacked. */
export function objectsFromYaml(text: string, source: string): unknown[] {
  return parseAllDocuments(text).flatMap((doc, index) => {
    // yaml's message is a line with the position, then a code frame: keep the line.
    if (doc.errors.length > 0) throw new Error(`${source}: document ${index + 1}: ${doc.errors[0]!.message.split("\n")[0]!.replace(/:$/, "")}`);
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
