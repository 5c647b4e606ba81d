// A run killed with SIGKILL leaves pods, shims, mounts, the bridge, iptables chains and changed sysctls behind;
// the next start sweeps them from the journal and comes up, and a second run is refused while one holds the lock.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../cluster/binaries.js";
import { hostSnapshot, readable, type HostSnapshot } from "../cluster/node/hostSnapshot.js";
import { containerdSocket } from "../cluster/node/components.js";
import { run } from "../cluster/node/host.js";
import { JOURNAL_FILE } from "../cluster/node/layout.js";
import { startRealNode, sweepHost } from "../cluster/node/realNode.js";
import { until } from "../cluster/wait.js";
import { chartDir } from "../chart/helm.js";
import { imageArchive } from "./chartInstall.js";
import { withoutNode } from "./gate.js";

/** The image the chart pulls with its default values. */
const chartImage = {
  repository: /^ {2}repository: (\S+)$/m.exec(readFileSync(path.join(chartDir, "values.yaml"), "utf8"))![1]!,
  tag: /^appVersion: "?([^"\s]+)"?$/m.exec(readFileSync(path.join(chartDir, "Chart.yaml"), "utf8"))![1]!,
};

interface Ready {
  kubeconfig: string;
  images: { busybox: string };
  swept: string[];
  pids: Record<string, number>;
  volume: string;
}

const main = path.join(repoRoot, "dist", "test", "cluster", "node", "main.js");
const running: ChildProcess[] = [];

/** Starts `make cluster`'s program and waits for its READY line. */
async function startHarness(archives: string[] = []): Promise<{ child: ChildProcess; ready: Ready }> {
  if (!existsSync(main)) throw new Error(`${main} is missing: run 'make build' (make node-test does)`);
  const child = spawn(process.execPath, [main, ...archives], { stdio: ["ignore", "pipe", "pipe"] });
  running.push(child);
  let output = "";
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no READY within 240 s:\n${output}`)), 240_000);
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const line = /^READY (.*)$/m.exec(output);
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line[1]!) as Ready);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`harness exited with ${code} before READY:\n${output}`));
    });
  });
  return { child, ready };
}

const exited = (child: ChildProcess) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise<number | null>((resolve) => child.once("exit", resolve)));

let before: HostSnapshot;

describe.skipIf(withoutNode)("the sweep", () => {
  beforeAll(async () => {
    await sweepHost();
    before = readable(hostSnapshot());
  });

  afterAll(async () => {
    for (const child of running) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT");
        await exited(child);
      }
    }
  });

  it("cleans up after a SIGKILLed run, comes up again, refuses a second run meanwhile, and restores the host on Ctrl-C", async () => {
    // As `make cluster` runs it: our image imported under the chart's default reference, a volume folder for 65532.
    const first = await startHarness([imageArchive()]);
    const refs = run("ctr", ["--address", containerdSocket(), "-n", "k8s.io", "images", "ls", "-q"]).split("\n");
    expect(refs).toContain(`${chartImage.repository}:${chartImage.tag}`);
    expect(statSync(first.ready.volume)).toMatchObject({ uid: 65532, gid: 65532 });
    const kc = new KubeConfig();
    kc.loadFromFile(first.ready.kubeconfig);
    // A pod that outlives its kubelet: a shim, a netns, overlay mounts and cgroups to sweep.
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: "default",
      body: { metadata: { name: "sleeper" }, spec: { containers: [{ name: "main", image: first.ready.images.busybox, imagePullPolicy: "Never", command: ["sleep", "3600"] }] } },
    });
    await until("sleeper Running", async () => ((await core.readNamespacedPod({ name: "sleeper", namespace: "default" })).status?.phase === "Running" ? true : undefined), 60_000);
    first.child.kill("SIGKILL");
    await exited(first.child);

    const left = readable(hostSnapshot());
    expect(existsSync(JOURNAL_FILE)).toBe(true);
    expect(left).not.toEqual(before);
    expect(left.iptables.ipv4.some((rule) => rule.includes("APPSNAP-GUARD"))).toBe(true);

    const second = await startHarness();
    const swept = second.ready.swept.join("\n");
    expect(swept).toMatch(/killed \d+ processes naming/);
    expect(swept).toMatch(/killed \d+ processes in cgroup/);
    expect(swept).toMatch(/unmounted \d+ mounts/);
    expect(swept).toMatch(/deleted link appsnap0/);
    expect(swept).toMatch(/ipv4 iptables: deleted/);
    expect(swept).toMatch(/egress guard removed/);

    await expect(startRealNode()).rejects.toThrow(/another real-node run holds/);

    second.child.kill("SIGINT");
    expect(await exited(second.child)).toBe(0);
    expect(readable(hostSnapshot())).toEqual(before);
  });
});
