// The write-ahead journal of host changes: each entry is appended (and fsynced) BEFORE the change it describes,
// so a run killed at any instant leaves a journal that covers everything it changed. Teardown, or the next
// start, replays it (hostChanges.ts orders the replay) and then deletes it.
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync } from "node:fs";
import { z } from "zod";

const family = z.enum(["ipv4", "ipv6"]);

export const journalEntry = z.discriminatedUnion("kind", [
  /** Our egress guard chains (mangle, both families): removed last. */
  z.object({ kind: z.literal("guard") }),
  /** iptables-save of the host before the run: what teardown restores the tables to (our guard aside). */
  z.object({ kind: z.literal("iptables"), family, save: z.string() }),
  /** Old values; null where the sysctl did not exist (e.g. br_netfilter not loaded). */
  z.object({ kind: z.literal("sysctls"), values: z.record(z.string(), z.string().nullable()) }),
  /** Host-wide paths that did not exist before the run. */
  z.object({ kind: z.literal("paths"), absent: z.array(z.string()) }),
  /** libcni's shared cache: our networks' result files go, and the folders listed as absent before, if empty. */
  z.object({ kind: z.literal("cni-cache"), dir: z.string(), networks: z.array(z.string()), absent: z.array(z.string()) }),
  /** The run dir: processes naming it are killed, mounts below it unmounted, then it is removed. */
  z.object({ kind: z.literal("dir"), path: z.string() }),
  /** kubelet's cgroup root, created by us in each listed hierarchy (mount points). */
  z.object({ kind: z.literal("cgroups"), name: z.string(), hierarchies: z.array(z.string()) }),
  /** A network link we (or CNI) create: the bridge. */
  z.object({ kind: z.literal("link"), name: z.string() }),
]);
export type JournalEntry = z.infer<typeof journalEntry>;
export type Family = z.infer<typeof family>;

/**
 * Parses a journal. A torn last line (the run died mid-append) is dropped: the change it announced was never
 * started, since every change waits for its entry to reach the disk.
 */
export function parseJournal(text: string): JournalEntry[] {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  const entries: JournalEntry[] = [];
  lines.forEach((line, index) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      if (index === lines.length - 1 && !text.endsWith("\n")) return;
      throw new Error(`journal line ${index + 1} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    entries.push(journalEntry.parse(parsed));
  });
  return entries;
}

export class Journal {
  constructor(readonly file: string) {}

  exists(): boolean {
    return existsSync(this.file);
  }

  read(): JournalEntry[] {
    return this.exists() ? parseJournal(readFileSync(this.file, "utf8")) : [];
  }

  /** Appends one entry and waits for it to reach the disk. */
  record(entry: JournalEntry): void {
    appendFileSync(this.file, `${JSON.stringify(journalEntry.parse(entry))}\n`, { mode: 0o600 });
    const fd = openSync(this.file, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}
