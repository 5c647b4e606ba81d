// Small readers and writers of host state (iptables, sysctls, mounts, cgroups, processes) for sweep.ts,
// hostSnapshot.ts and realNode.ts. Everything here is synchronous: teardown also runs from an exit handler.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Family } from "./journal.js";

/** Runs a command, returning stdout; throws with its stderr when it fails. */
export function run(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

const tools = { ipv4: { save: "iptables-save", restore: "iptables-restore" }, ipv6: { save: "ip6tables-save", restore: "ip6tables-restore" } };

export function iptablesSave(family: Family): string {
  return run(tools[family].save, []);
}

/** iptables-restore --noflush: applies only the given lines, atomically per table. */
export function iptablesRestore(family: Family, script: string): void {
  if (script !== "") run(tools[family].restore, ["--noflush", "--wait"], script);
}

const sysctlFile = (key: string) => path.join("/proc/sys", ...key.split("."));

export function readSysctls(keys: string[]): Record<string, string | null> {
  const values: Record<string, string | null> = {};
  for (const key of keys) {
    try {
      values[key] = readFileSync(sysctlFile(key), "utf8").trim();
    } catch {
      values[key] = null;
    }
  }
  return values;
}

export function writeSysctl(key: string, value: string): void {
  writeFileSync(sysctlFile(key), `${value}\n`);
}

/** Mount points (decoded) at or below `dir`, in mount order. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((field): field is string => field !== undefined)
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((mount) => mount === dir || mount.startsWith(`${dir}/`));
}

/** Mount points of every cgroup hierarchy (v1 controllers, the named systemd one, and cgroup2). */
export function cgroupHierarchies(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => / - cgroup2? /.test(line))
    .map((line) => line.split(" ")[4]!)
    .sort();
}

/** Every directory below (and including) `dir`, deepest first. */
export function cgroupDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const below = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => cgroupDirs(path.join(dir, entry.name)));
  return [...below, dir];
}

export function cgroupPids(dir: string): number[] {
  return cgroupDirs(dir).flatMap((cgroup) => {
    try {
      return readFileSync(path.join(cgroup, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/**
 * The node's programs, by executable name: ours from .cache/bin (<tool>-<version>), containerd and its shims,
 * runc. A shell or kubectl whose command line merely names the run dir is never one of them.
 */
const NODE_PROGRAM = /^(containerd|containerd-shim.*|runc|etcd-.*|kube-.*|kubelet-.*|coredns-.*)$/;

/** The node's processes (not this one) any of whose command-line arguments contain `marker`. */
export function processesNaming(marker: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let args: string[];
    let exe: string;
    try {
      args = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      exe = path.basename(readlinkSync(`/proc/${name}/exe`));
    } catch {
      continue;
    }
    if (NODE_PROGRAM.test(exe) && args.some((arg) => arg.includes(marker))) found.push({ pid: Number(name), command: args.filter(Boolean).join(" ").slice(0, 200) });
  }
  return found;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function linkExists(name: string): boolean {
  return existsSync(path.join("/sys/class/net", name));
}
