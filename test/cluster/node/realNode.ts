// A real single-node cluster: etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet and
// kube-proxy on loopback and a private bridge, with every host change journaled before it is made (journal.ts)
// and undone on stop, on exit, or by the next start (sweep.ts). One run at a time (lock.ts).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { cacheDir, toolPath } from "../binaries.js";
import { identityKubeConfig, waitReady, type ControlPlane } from "../controlPlane.js";
import { freePort, startChild, waitForHttp200, type Child } from "../processes.js";
import {
  apiserverArgs,
  apiserverUrl,
  cniConfig,
  containerdConfig,
  containerdSocket,
  controllerManagerArgs,
  etcdArgs,
  kubeletArgs,
  kubeletConfig,
  kubeProxyArgs,
  kubeProxyConfig,
  schedulerArgs,
  type Ports,
} from "./components.js";
import { corednsPath, corefile, grantCoredns } from "./coredns.js";
import { guardInstalled, guardScript } from "./guard.js";
import { cgroupHierarchies, iptablesRestore, iptablesSave, readSysctls, run } from "./host.js";
import { busyboxImage, pauseImage } from "./images.js";
import { Journal } from "./journal.js";
import { BRIDGE, CGROUP_ROOT, CNI_CACHE_DIR, CNI_NETWORKS, CRI_NAMESPACE, HOST_PATHS, JOURNAL_FILE, LOCK_FILE, NODE_NAME, RUN_DIR, STATE_DIR, SYSCTLS, runPath } from "./layout.js";
import { acquireLock } from "./lock.js";
import { createBridge, networkConflicts } from "./network.js";
import { writePki } from "./pki.js";
import { replayJournal } from "./sweep.js";
import { nodeToolPath, requireRealNode } from "./tools.js";

export interface RealNode extends Omit<ControlPlane, "stop"> {
  /** containerd's CRI socket (for ctr --address). */
  readonly containerdSocket: string;
  /** Locally built images, imported into containerd's k8s.io namespace. */
  readonly images: { pause: string; busybox: string };
  /** Where each component's log is kept (outside the run dir, so it survives teardown). */
  readonly logDir: string;
  /** What the start found and undid of a previous run (empty when the host was clean). */
  readonly swept: string[];
  /** Seconds from start() to each milestone. */
  readonly timings: Record<string, number>;
  /** Component name to pid (containerd-shim and container processes are not children of ours). */
  pids(): Record<string, number>;
  /** Runs ctr against the node's containerd in the k8s.io namespace. */
  ctr(args: string[]): string;
  /** Stops every component and restores the host; returns what the restore undid. */
  stop(): Promise<string[]>;
}

export interface RealNodeOptions {
  log?: (line: string) => void;
  /** Extra image archives to import (e.g. the image `make image` builds). */
  imageArchives?: string[];
  readyTimeoutMs?: number;
}

const CGROUP_COPY = ["cpuset.cpus", "cpuset.mems"];

/** kubelet needs its --cgroup-root to exist in every hierarchy; a fresh cpuset cgroup has no CPUs until given its parent's. */
function createCgroupRoot(hierarchies: string[]): void {
  for (const hierarchy of hierarchies) {
    const dir = path.join(hierarchy, CGROUP_ROOT);
    mkdirSync(dir, { recursive: true });
    for (const name of CGROUP_COPY) {
      if (existsSync(path.join(dir, name))) writeFileSync(path.join(dir, name), readFileSync(path.join(hierarchy, name)));
    }
  }
}

/**
 * Polls `probe` until it returns a value; fails at once, with the log tail, when one of `children` exits (a
 * component that dies during start-up is the usual cause), or after `timeoutMs` with the probe's last error.
 */
async function waitFor<T>(what: string, children: Child[], probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  for (;;) {
    const dead = children.find((child) => child.process.exitCode !== null || child.process.signalCode !== null);
    if (dead) throw new Error(`${dead.name} exited (${dead.process.exitCode ?? dead.process.signalCode}) while waiting for ${what}:\n${dead.tail()}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = (err as Error).message.split("\n")[0] ?? "";
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function allocatePorts(): Promise<Ports> {
  return {
    etcd: await freePort(),
    etcdPeer: await freePort(),
    apiserver: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kubelet: await freePort(),
    kubeletHealthz: await freePort(),
    proxyHealthz: await freePort(),
    proxyMetrics: await freePort(),
    corednsReady: await freePort(),
  };
}

/** Undoes what a killed run left (its journal), under the lock; returns what it undid. */
export async function sweepHost(): Promise<string[]> {
  requireRealNode();
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const lock = await acquireLock(LOCK_FILE);
  try {
    const journal = new Journal(JOURNAL_FILE);
    return journal.exists() ? replayJournal(journal) : [];
  } finally {
    await lock.release();
  }
}

export async function startRealNode(options: RealNodeOptions = {}): Promise<RealNode> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (name: string) => {
    timings[name] = Number(((Date.now() - started) / 1000).toFixed(1));
    log(`${name} after ${timings[name]} s`);
  };

  requireRealNode();

  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const lock = await acquireLock(LOCK_FILE);
  const journal = new Journal(JOURNAL_FILE);
  const children: Child[] = [];
  let stopped = false;

  const restore = (): string[] => {
    for (const child of children) child.process.kill("SIGKILL");
    return replayJournal(journal);
  };
  const onExit = () => {
    if (stopped) return;
    stopped = true;
    try {
      restore();
    } catch (err) {
      console.error(`[real-node] restore on exit failed (the next start sweeps again): ${(err as Error).message}`);
    }
  };

  let swept: string[] = [];
  try {
    // A killed run's journal: undo it before changing anything.
    if (journal.exists()) {
      log("sweeping what a previous run left");
      swept = replayJournal(journal);
      for (const line of swept) log(`  swept: ${line}`);
    }
    const conflicts = networkConflicts();
    if (conflicts.length > 0) throw new Error(`the real node's network collides with this host's:\n- ${conflicts.join("\n- ")}`);
    process.once("exit", onExit);

    // The guard first: no later step may run without it.
    journal.record({ kind: "guard" });
    for (const family of ["ipv4", "ipv6"] as const) {
      iptablesRestore(family, guardScript(family));
      if (!guardInstalled(iptablesSave(family), family)) throw new Error(`${family} egress guard not in place after iptables-restore`);
    }
    for (const family of ["ipv4", "ipv6"] as const) journal.record({ kind: "iptables", family, save: iptablesSave(family) });
    journal.record({ kind: "sysctls", values: readSysctls(SYSCTLS) });
    journal.record({ kind: "paths", absent: HOST_PATHS.filter((p) => !existsSync(p)) });
    const cniCache = [CNI_CACHE_DIR, path.join(CNI_CACHE_DIR, "results")];
    journal.record({ kind: "cni-cache", dir: CNI_CACHE_DIR, networks: CNI_NETWORKS, absent: cniCache.filter((p) => !existsSync(p)) });
    journal.record({ kind: "dir", path: RUN_DIR });
    rmSync(RUN_DIR, { recursive: true, force: true });
    mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
    const hierarchies = cgroupHierarchies();
    journal.record({ kind: "cgroups", name: CGROUP_ROOT, hierarchies });
    createCgroupRoot(hierarchies);
    const ports = await allocatePorts();
    journal.record({ kind: "link", name: BRIDGE });
    createBridge(ports.apiserver);
    mark("host prepared (guard, journal, bridge)");

    const logDir = path.join(cacheDir, "node-logs");
    mkdirSync(logDir, { recursive: true });
    const start = (name: string, command: string, args: string[]) => {
      const logFile = path.join(logDir, `${name}.log`);
      rmSync(logFile, { force: true });
      const child = startChild(name, command, args, logFile);
      children.push(child);
      return child;
    };

    const url = apiserverUrl(ports);
    const pki = writePki(runPath("pki"), url);

    const etcd = start("etcd", toolPath("etcd"), etcdArgs(ports));
    const apiserver = start("kube-apiserver", toolPath("kube-apiserver"), apiserverArgs(ports, pki));

    // containerd and the image imports overlap the apiserver's start.
    const pause = pauseImage();
    const busybox = busyboxImage();
    mkdirSync(runPath("cni", "net.d"), { recursive: true });
    writeFileSync(runPath("cni", "net.d", "10-app-snapshots.conflist"), cniConfig());
    writeFileSync(runPath("containerd.toml"), containerdConfig(pause.ref));
    const containerd = start("containerd", "containerd", ["--config", runPath("containerd.toml")]);
    const ctr = (args: string[]) => run("ctr", ["--address", containerdSocket(), "--namespace", CRI_NAMESPACE, ...args]);
    await waitFor("containerd's socket", [containerd], () => Promise.resolve(existsSync(containerdSocket()) ? true : undefined), 30_000);
    mark("containerd ready");
    for (const archive of [pause.archive, busybox.archive, ...(options.imageArchives ?? [])]) ctr(["images", "import", archive]);
    mark("images imported");

    await waitReady(url, pki.caPem, pki.admin, [etcd, apiserver], options.readyTimeoutMs ?? 90_000);
    mark("kube-apiserver ready");

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(pki.kubeconfig.admin);
    await grantCoredns(kubeConfig);
    writeFileSync(runPath("Corefile"), corefile(pki.kubeconfig.coredns, ports.corednsReady));
    const coredns = start("coredns", corednsPath(), ["-conf", runPath("Corefile")]);
    start("kube-controller-manager", nodeToolPath("kube-controller-manager"), controllerManagerArgs(ports, pki));
    start("kube-scheduler", nodeToolPath("kube-scheduler"), schedulerArgs(ports, pki));
    writeFileSync(runPath("kubelet.yaml"), kubeletConfig(ports, pki));
    const kubelet = start("kubelet", nodeToolPath("kubelet"), kubeletArgs(pki));
    writeFileSync(runPath("kube-proxy.yaml"), kubeProxyConfig(ports, pki));
    start("kube-proxy", nodeToolPath("kube-proxy"), kubeProxyArgs());

    const core = kubeConfig.makeApiClient(CoreV1Api);
    const timeout = options.readyTimeoutMs ?? 90_000;
    let notReady = "";
    await waitFor(
      `node ${NODE_NAME} Ready`,
      children,
      async () => {
        const ready = (await core.readNode({ name: NODE_NAME })).status?.conditions?.find((c) => c.type === "Ready");
        notReady = `${ready?.status ?? "no Ready condition"} ${ready?.message ?? ""}`;
        return ready?.status === "True" ? true : undefined;
      },
      timeout,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (Ready: ${notReady})\nkubelet log tail:\n${kubelet.tail(15)}`, { cause: err });
    });
    mark("node Ready");
    await waitFor("the default ServiceAccount", children, async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })) && true, timeout);
    mark("default ServiceAccount present");
    await waitForHttp200(coredns, `http://127.0.0.1:${ports.corednsReady}/ready`, timeout);
    mark("cluster DNS ready");

    return {
      url,
      dir: pki.dir,
      kubeconfigPath: pki.kubeconfig.admin,
      kubeConfig,
      caPem: pki.caPem,
      kubeConfigFor: (user, groups = []) => identityKubeConfig({ url, dir: pki.dir }, user, groups),
      containerdSocket: containerdSocket(),
      images: { pause: pause.ref, busybox: busybox.ref },
      logDir,
      swept,
      timings,
      pids: () => Object.fromEntries(children.filter((c) => c.process.exitCode === null).map((c) => [c.name, c.process.pid ?? 0])),
      ctr,
      async stop() {
        if (stopped) return [];
        stopped = true;
        // Components in reverse order of start; kubelet first among the node's, so it starts nothing new.
        for (const child of [...children].reverse()) await child.stop(5_000);
        const done = restore();
        process.removeListener("exit", onExit);
        await lock.release();
        return done;
      },
    };
  } catch (err) {
    if (!stopped) {
      stopped = true;
      try {
        restore();
      } catch (restoreErr) {
        log(`restore after a failed start failed (the next start sweeps again): ${(restoreErr as Error).message}`);
      }
    }
    process.removeListener("exit", onExit);
    await lock.release();
    throw err;
  }
}
