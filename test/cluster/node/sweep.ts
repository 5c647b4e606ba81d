// Carries out a journal replay (hostChanges.ts decides the order): teardown's second half, and the first thing
// a start does when a killed run left a journal. Every step is idempotent, so a replay that is itself killed
// is simply replayed again. Returns one line per change it undid (what `make cluster` prints).
import { existsSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import path from "node:path";
import { GUARD_CHAINS, guardRemovalScript } from "./guard.js";
import { ownChain, ownRule } from "./layout.js";
import { iptablesRemoved, iptablesUndo, restorePlan, sysctlsToRestore, type RestoreStep } from "./hostChanges.js";
import { alive, cgroupDirs, cgroupPids, iptablesRestore, iptablesSave, linkExists, mountsUnder, processesNaming, readSysctls, run, writeSysctl } from "./host.js";
import type { Journal } from "./journal.js";

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** SIGKILLs the pids `find` returns until it returns none (new ones may appear while a parent dies). */
function killAll(find: () => number[], timeoutMs = 10_000): number {
  const killed = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = find().filter((pid) => pid !== process.pid);
    if (pids.length === 0) return killed.size;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        killed.add(pid);
      } catch {
        // already gone
      }
    }
    if (Date.now() > deadline) throw new Error(`processes survive SIGKILL: ${pids.filter(alive).join(", ")}`);
    sleep(50);
  }
}

function step(s: RestoreStep): string[] {
  switch (s.do) {
    case "kill-processes": {
      const names = processesNaming(s.marker).map((p) => p.command.split(" ")[0]!.split("/").pop()!);
      const count = killAll(() => processesNaming(s.marker).map((p) => p.pid));
      return count > 0 ? [`killed ${count} processes naming ${s.marker} (${[...new Set(names)].sort().join(", ")})`] : [];
    }
    case "kill-cgroups": {
      const count = killAll(() => s.hierarchies.flatMap((h) => cgroupPids(path.join(h, s.name))));
      return count > 0 ? [`killed ${count} processes in cgroup ${s.name} (pods' containers)`] : [];
    }
    case "unmount-under": {
      const mounts = mountsUnder(s.path);
      // Lazy detach, deepest (latest) first; a detached parent takes its children with it.
      for (const mount of [...mounts].reverse()) {
        if (mountsUnder(mount).length > 0) run("umount", ["-l", mount]);
      }
      const left = mountsUnder(s.path);
      if (left.length > 0) throw new Error(`mounts survive umount -l: ${left.join(", ")}`);
      return mounts.length > 0 ? [`unmounted ${mounts.length} mounts under ${s.path} (rootfs overlays, shm, netns, kubelet volumes)`] : [];
    }
    case "remove-cgroups": {
      const dirs = s.hierarchies.flatMap((h) => cgroupDirs(path.join(h, s.name)));
      for (const dir of dirs) {
        for (let attempt = 0; ; attempt++) {
          try {
            rmdirSync(dir);
            break;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
            if (attempt >= 50) throw new Error(`cannot remove cgroup ${dir}: ${(err as Error).message}`, { cause: err });
            sleep(100);
          }
        }
      }
      return dirs.length > 0 ? [`removed ${dirs.length} cgroups below ${s.name}`] : [];
    }
    case "delete-link":
      if (!linkExists(s.name)) return [];
      run("ip", ["link", "delete", s.name]);
      return [`deleted link ${s.name}`];
    case "restore-iptables": {
      const current = iptablesSave(s.family);
      const script = iptablesUndo(s.baseline, current, { chain: ownChain, rule: ownRule, keep: GUARD_CHAINS });
      iptablesRestore(s.family, script);
      const lines = script.split("\n");
      const count = (prefix: string) => lines.filter((line) => line.startsWith(prefix)).length;
      const removed = iptablesRemoved(s.baseline, iptablesSave(s.family));
      return [
        ...(script ? [`${s.family} iptables: deleted ${count("-D ")} rules and ${count("-X ")} chains`] : []),
        ...removed.map((rule) => `WARNING: ${s.family} rule of the baseline is gone (not re-added): ${rule}`),
      ];
    }
    case "restore-sysctls": {
      const changes = sysctlsToRestore(s.values, readSysctls(Object.keys(s.values)));
      const now = readSysctls(Object.keys(changes));
      for (const [key, value] of Object.entries(changes)) writeSysctl(key, value);
      return Object.entries(changes).map(([key, value]) => `sysctl ${key}: ${now[key]} -> ${value}`);
    }
    case "remove-dir":
      if (!existsSync(s.path)) return [];
      rmSync(s.path, { recursive: true, force: true });
      return [`removed ${s.path}`];
    case "remove-paths": {
      const present = s.paths.filter((p) => existsSync(p));
      for (const p of present) rmSync(p, { recursive: true, force: true });
      return present.map((p) => `removed ${p} (absent before the run)`);
    }
    case "clean-cni-cache": {
      const results = path.join(s.dir, "results");
      const files = existsSync(results) ? readdirSync(results).filter((name) => s.networks.some((network) => name.startsWith(`${network}-`))) : [];
      for (const name of files) rmSync(path.join(results, name), { force: true });
      const removed: string[] = [];
      // Deepest first, each checked once its children are gone.
      for (const dir of [...s.absent].sort((a, b) => b.length - a.length)) {
        if (existsSync(dir) && readdirSync(dir).length === 0) {
          rmdirSync(dir);
          removed.push(dir);
        }
      }
      return [...(files.length > 0 ? [`removed ${files.length} CNI result files of ${s.networks.join(", ")} from ${results}`] : []), ...removed.map((dir) => `removed ${dir} (absent before the run)`)];
    }
    case "remove-guard": {
      const done: string[] = [];
      for (const family of ["ipv4", "ipv6"] as const) {
        const script = guardRemovalScript(iptablesSave(family));
        iptablesRestore(family, script);
        if (script) done.push(`${family} egress guard removed`);
      }
      return done;
    }
  }
}

/** Replays the journal and deletes it. Returns what was undone, in order. */
export function replayJournal(journal: Journal): string[] {
  const done: string[] = [];
  for (const s of restorePlan(journal.read())) done.push(...step(s));
  journal.remove();
  return done;
}
