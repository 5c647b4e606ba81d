import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The chart NOTES' `kubectl apply -f - <<EOF … EOF` command for the BackupStorageLocation, as printed. */
export function locationCommandIn(notes: string): string {
  const match = /(?:^|\n)(kubectl apply -f - <<EOF\n[\s\S]*?\nEOF)\n/.exec(notes);
  if (!match) throw new Error(`no BackupStorageLocation command in the chart's NOTES:\n${notes}`);
  return match[1]!;
}

/**
 * Runs a command printed by the NOTES through bash, as the admin pastes it, with `kubectl` on PATH being
 * `kubectl` (a real binary, or a script's text to stand in for one). Returns what it printed.
 */
export function runNotesCommand(command: string, kubectl: { binary: string } | { script: string }, env: Record<string, string> = {}): string {
  const bin = mkdtempSync(path.join(os.tmpdir(), "notes-kubectl-"));
  try {
    const target = path.join(bin, "kubectl");
    if ("binary" in kubectl) symlinkSync(kubectl.binary, target);
    else writeFileSync(target, kubectl.script, { mode: 0o755 });
    // HOME is the scratch folder too, so kubectl's discovery cache goes away with it.
    return execFileSync("bash", ["-c", command], { env: { HOME: bin, ...env, PATH: `${bin}:${process.env.PATH ?? ""}` }, encoding: "utf8" });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}
