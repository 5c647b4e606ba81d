// What a run may change on the host, read in one go: tests compare the snapshot before a run with the one after
// its teardown (or after the next run's sweep), so a change the journal misses shows up as a diff.
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { parseIptablesSave } from "./hostChanges.js";
import { cgroupHierarchies, iptablesSave, mountsUnder, processesNaming, readSysctls } from "./host.js";
import { BRIDGE, CGROUP_ROOT, CNI_CACHE_DIR, HOST_PATHS, RUN_DIR, STATE_DIR, SYSCTLS } from "./layout.js";

export interface HostSnapshot {
  /** "table: :CHAIN POLICY" and "table: -A ..." lines; tables holding only empty built-in ACCEPT chains are left out. */
  iptables: { ipv4: string[]; ipv6: string[] };
  sysctls: Record<string, string | null>;
  links: string[];
  mounts: string[];
  cgroups: string[];
  paths: string[];
  processes: string[];
  /** Entries of the state dir (only the lock, its owner note and no journal after a clean teardown). */
  stateDir: string[];
}

function tables(text: string): string[] {
  const lines: string[] = [];
  for (const [name, table] of parseIptablesSave(text)) {
    const trivial = table.rules.length === 0 && [...table.chains.values()].every((policy) => policy === "ACCEPT");
    if (trivial) continue;
    for (const [chain, policy] of table.chains) lines.push(`${name}: :${chain} ${policy}`);
    for (const rule of table.rules) lines.push(`${name}: ${rule}`);
  }
  return lines.sort();
}

/** Writable-by-kubelet-or-CNI sysctl folders, read whole (counters and write-only files left out). */
function sysctlTree(): string[] {
  const dirs = ["kernel", "vm", "net/ipv4", "net/ipv4/conf/all", "net/ipv4/conf/default", "net/ipv6/conf/all", "net/bridge", "net/netfilter"];
  const volatile = /(count|_nr|-nr|nr_|ns_last_pid|random|entropy|stat|tainted|state|drop_caches|compact_memory|inode|dentry|boot_id|uuid|loadavg|pty|_seq|max_map)/;
  const keys: string[] = [];
  for (const dir of dirs) {
    const full = path.join("/proc/sys", dir);
    if (!existsSync(full)) continue;
    for (const entry of readdirSync(full, { withFileTypes: true })) {
      if (entry.isFile() && !volatile.test(entry.name)) keys.push(`${dir}/${entry.name}`.replaceAll("/", "."));
    }
  }
  return keys;
}

export function hostSnapshot(): HostSnapshot {
  const sysctls = readSysctls([...new Set([...SYSCTLS, ...sysctlTree()])].sort());
  return {
    iptables: { ipv4: tables(iptablesSave("ipv4")), ipv6: tables(iptablesSave("ipv6")) },
    sysctls,
    links: readdirSync("/sys/class/net").filter((name) => name === BRIDGE || name.startsWith("veth")).sort(),
    mounts: mountsUnder(STATE_DIR),
    cgroups: cgroupHierarchies().filter((h) => existsSync(path.join(h, CGROUP_ROOT))),
    paths: [...HOST_PATHS, CNI_CACHE_DIR, path.join(CNI_CACHE_DIR, "results")].filter((p) => existsSync(p)),
    processes: processesNaming(RUN_DIR).map((p) => p.command),
    stateDir: existsSync(STATE_DIR) ? readdirSync(STATE_DIR).sort() : [],
  };
}

/** Sysctl files that cannot be read (write-only) come back null; only keys readable both times matter. */
export function readable(snapshot: HostSnapshot): HostSnapshot {
  return { ...snapshot, sysctls: Object.fromEntries(Object.entries(snapshot.sysctls).filter(([, value]) => value !== null)) };
}

