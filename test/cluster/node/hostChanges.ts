// Pure decisions about undoing host changes: in which order the journal is replayed, and which iptables
// commands bring the tables back to their baseline. sweep.ts carries them out.
import type { Family, JournalEntry } from "./journal.js";

export type RestoreStep =
  | { do: "kill-processes"; marker: string }
  | { do: "kill-cgroups"; name: string; hierarchies: string[] }
  | { do: "unmount-under"; path: string }
  | { do: "remove-cgroups"; name: string; hierarchies: string[] }
  | { do: "delete-link"; name: string }
  | { do: "restore-iptables"; family: Family; baseline: string }
  | { do: "restore-sysctls"; values: Record<string, string | null> }
  | { do: "remove-dir"; path: string }
  | { do: "remove-paths"; paths: string[] }
  | { do: "clean-cni-cache"; dir: string; networks: string[]; absent: string[] }
  | { do: "remove-guard" };

// Processes first (nothing may re-create what is being removed), then what they held (mounts, cgroups, the
// bridge), then the host's tables and knobs, files last but one; the egress guard goes last of all, so pod
// traffic is dropped for as long as anything of a pod can still exist.
const phase: Record<RestoreStep["do"], number> = {
  "kill-processes": 0,
  "kill-cgroups": 1,
  "unmount-under": 2,
  "remove-cgroups": 3,
  "delete-link": 4,
  "restore-iptables": 5,
  "restore-sysctls": 6,
  "remove-dir": 7,
  "remove-paths": 8,
  "clean-cni-cache": 8,
  "remove-guard": 9,
};

function stepsOf(entry: JournalEntry): RestoreStep[] {
  switch (entry.kind) {
    case "guard":
      return [{ do: "remove-guard" }];
    case "iptables":
      return [{ do: "restore-iptables", family: entry.family, baseline: entry.save }];
    case "sysctls":
      return [{ do: "restore-sysctls", values: entry.values }];
    case "paths":
      return [{ do: "remove-paths", paths: entry.absent }];
    case "cni-cache":
      return [{ do: "clean-cni-cache", dir: entry.dir, networks: entry.networks, absent: entry.absent }];
    case "dir":
      return [
        { do: "kill-processes", marker: entry.path },
        { do: "unmount-under", path: entry.path },
        { do: "remove-dir", path: entry.path },
      ];
    case "cgroups":
      return [
        { do: "kill-cgroups", name: entry.name, hierarchies: entry.hierarchies },
        { do: "remove-cgroups", name: entry.name, hierarchies: entry.hierarchies },
      ];
    case "link":
      return [{ do: "delete-link", name: entry.name }];
  }
}

/** The replay of a journal: every entry's undo steps, ordered by phase (stable within a phase). */
export function restorePlan(entries: JournalEntry[]): RestoreStep[] {
  return entries
    .flatMap(stepsOf)
    .map((step, index) => ({ step, index }))
    .sort((a, b) => phase[a.step.do] - phase[b.step.do] || a.index - b.index)
    .map(({ step }) => step);
}

export interface SavedTable {
  /** Chain name to policy ("-" for user chains). */
  chains: Map<string, string>;
  /** Rule lines as iptables-save prints them, "-A CHAIN ...", in order. */
  rules: string[];
}

/** Parses iptables-save (or ip6tables-save) output, without counters. */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/^\[\d+:\d+\]\s+/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      current = { chains: new Map(), rules: [] };
      tables.set(line.slice(1), current);
    } else if (line === "COMMIT") {
      current = undefined;
    } else if (current && line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name) current.chains.set(name, policy ?? "-");
    } else if (current && line.startsWith("-A ")) {
      current.rules.push(line);
    }
  }
  return tables;
}

const chainOf = (rule: string) => rule.split(/\s+/)[1] ?? "";
const targetOf = (rule: string) => /\s-[jg]\s+(\S+)/.exec(rule)?.[1];

/** Which chains and rules a run may delete (layout.ts: KUBE-*, APPSNAP-*), and which of ours stay (the guard). */
export interface Ownership {
  chain(name: string): boolean;
  /** A rule in someone else's chain that is ours (e.g. it names our bridge or ranges). */
  rule(rule: string): boolean;
  keep: string[];
}

/**
 * The iptables-restore --noflush input that removes what a run added and owns: our rules added to chains of
 * the baseline are deleted (by position, last first, so an added copy of a host rule goes and the host's own
 * stays where it was), our chains added are flushed and deleted. The baseline's rules of a chain are matched,
 * in order, as a subsequence of the current ones. What others added meanwhile (podman's CNI-* chains, Docker's),
 * the chains in `keep` and rules that jump to them stay. Rules the run removed from the baseline are not
 * re-added (nothing we start removes any; iptablesRemoved reports them). Empty when nothing is ours.
 */
export function iptablesUndo(baselineText: string, currentText: string, own: Ownership): string {
  const baseline = parseIptablesSave(baselineText);
  const current = parseIptablesSave(currentText);
  const kept = new Set(own.keep);
  const ours = (rule: string) => {
    const target = targetOf(rule);
    if (target !== undefined && kept.has(target)) return false;
    return own.chain(chainOf(rule)) || (target !== undefined && own.chain(target)) || own.rule(rule);
  };
  const out: string[] = [];
  for (const [name, table] of current) {
    const before = baseline.get(name) ?? { chains: new Map<string, string>(), rules: [] };
    const lines: string[] = [];
    const chains = [...new Set([...table.chains.keys(), ...table.rules.map(chainOf)])];
    const added = chains.filter((chain) => !before.chains.has(chain) && !kept.has(chain) && own.chain(chain));
    for (const chain of chains) {
      if (added.includes(chain) || kept.has(chain)) continue;
      const wanted = before.rules.filter((rule) => chainOf(rule) === chain);
      const deletions: number[] = [];
      let matched = 0;
      table.rules
        .filter((rule) => chainOf(rule) === chain)
        .forEach((rule, index) => {
          if (matched < wanted.length && rule === wanted[matched]) matched++;
          else if (ours(rule)) deletions.push(index + 1);
        });
      for (const position of deletions.reverse()) lines.push(`-D ${chain} ${position}`);
    }
    for (const chain of added) lines.push(`-F ${chain}`);
    for (const chain of added) lines.push(`-X ${chain}`);
    if (lines.length > 0) out.push(`*${name}`, ...lines, "COMMIT");
  }
  return out.length > 0 ? `${out.join("\n")}\n` : "";
}

/** Rules of the baseline that are gone now (reported, not re-added). */
export function iptablesRemoved(baselineText: string, currentText: string): string[] {
  const baseline = parseIptablesSave(baselineText);
  const current = parseIptablesSave(currentText);
  const removed: string[] = [];
  for (const [name, table] of baseline) {
    const now = new Map<string, number>();
    for (const rule of current.get(name)?.rules ?? []) now.set(rule, (now.get(rule) ?? 0) + 1);
    for (const rule of table.rules) {
      const count = now.get(rule) ?? 0;
      if (count > 0) now.set(rule, count - 1);
      else removed.push(`${name}: ${rule}`);
    }
  }
  return removed;
}

/** The sysctls whose value differs from the journaled one, with the value to write back. */
export function sysctlsToRestore(old: Record<string, string | null>, now: Record<string, string | null>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(old)) {
    if (value !== null && now[key] !== null && now[key] !== undefined && now[key] !== value) out[key] = value;
  }
  return out;
}
