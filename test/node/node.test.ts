// The real node (stage 3 of issue 15): a kubelet, containerd and kube-proxy beside our apiserver run real pods,
// and the host is exactly as before once it stops. Needs root, runc and cgroups: fails with the reason otherwise.
import { spawnSync } from "node:child_process";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../cluster/wait.js";
import { hostSnapshot, readable, type HostSnapshot } from "../cluster/node/hostSnapshot.js";
import { processesNaming, run } from "../cluster/node/host.js";
import { BRIDGE_IP, KUBERNETES_SERVICE_IP, RUN_DIR } from "../cluster/node/layout.js";
import { kubectlImage } from "../cluster/node/images.js";
import { startRealNode, sweepHost, type RealNode } from "../cluster/node/realNode.js";
import { runPod } from "./pods.js";
import { withoutNode } from "./gate.js";

let node: RealNode | undefined;
let before: HostSnapshot;

const started = () => {
  if (!node) throw new Error("the real node did not start");
  return node;
};

describe.skipIf(withoutNode)("a real single-node cluster", () => {
  beforeAll(async () => {
    await sweepHost();
    before = readable(hostSnapshot());
    node = await startRealNode({ log: (line) => console.log(`[real-node] ${line}`) });
  });

  afterAll(async () => {
    await node?.stop();
  });

  it("has node localhost Ready and the default ServiceAccount", async () => {
    const core = started().kubeConfig.makeApiClient(CoreV1Api);
    const n = await core.readNode({ name: "localhost" });
    expect(n.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect((await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })).metadata?.name).toBe("default");
  });

  it("listens on loopback or the bridge only (every component, containerd's shims included)", () => {
    const ours = new Set([...Object.values(started().pids()), ...processesNaming(RUN_DIR).map((p) => p.pid)]);
    const listening = run("ss", ["-H", "-l", "-t", "-u", "-n", "-p"])
      .split("\n")
      .filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((m) => ours.has(Number(m[1]))))
      .map((line) => line.split(/\s+/)[4]!);
    expect(listening.length).toBeGreaterThan(5);
    const local = listening.filter((address) => /^(127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+$/.test(address) || address.startsWith(`${BRIDGE_IP}:`));
    expect(listening).toEqual(local);
  });

  it("runs a busybox pod to completion and serves its logs", async () => {
    const { phase, logs } = await runPod(started().kubeConfig, started().images.busybox, "hello", "echo hello from $(hostname) as $(id -u)");
    expect(phase).toBe("Succeeded");
    expect(logs).toBe("hello from hello as 0\n");
  });

  it("routes a Service, found by its DNS name, to a pod that passed its readiness probe on the pod IP", async () => {
    const kc = started().kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "web", labels: { app: "web" } },
        spec: {
          containers: [
            {
              name: "main",
              image: started().images.busybox,
              imagePullPolicy: "Never",
              command: ["sh", "-c", "mkdir /www && echo served-by-web > /www/index.html && exec httpd -f -p 8080 -h /www"],
              readinessProbe: { httpGet: { path: "/", port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const service = await core.createNamespacedService({
      namespace: "default",
      body: { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] } },
    });
    await until("web Ready", async () => ((await core.readNamespacedPod({ name: "web", namespace: "default" })).status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined), 60_000);
    // By name, as a chart's NOTES and Velero's config name Services: cluster DNS (CoreDNS on the bridge) answers.
    const script = `exec 2>/dev/null; nslookup web.default.svc.cluster.local | grep -q 'Address: ${service.spec!.clusterIP}$' || exit 2; for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -q -O - http://web.default.svc/ && exit 0; sleep 1; done; exit 1`;
    const { phase, logs } = await runPod(kc, started().images.busybox, "web-client", script);
    expect({ phase, logs }).toEqual({ phase: "Succeeded", logs: "served-by-web\n" });
  });

  it("resolves nothing outside the cluster (no upstream DNS: nothing leaves the machine)", async () => {
    const { logs } = await runPod(started().kubeConfig, started().images.busybox, "outside", "cat /etc/resolv.conf; nslookup example.com >/dev/null 2>&1 && echo resolved || echo unresolved");
    expect(logs).toBe(`search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${BRIDGE_IP}\noptions ndots:5\nunresolved\n`);
  });

  it("lets a pod reach the apiserver through the kubernetes Service with its own service-account token", async () => {
    const kubectl = kubectlImage();
    started().ctr(["images", "import", kubectl.archive]);
    const core = started().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: "default",
      // kubectl's in-cluster config: KUBERNETES_SERVICE_HOST (the Service IP) and the projected token.
      body: { metadata: { name: "whoami" }, spec: { restartPolicy: "Never", containers: [{ name: "main", image: kubectl.ref, imagePullPolicy: "Never", args: ["auth", "whoami", "-o", "json"] }] } },
    });
    const phase = await until("whoami to finish", async () => {
      const p = (await core.readNamespacedPod({ name: "whoami", namespace: "default" })).status?.phase;
      return p === "Succeeded" || p === "Failed" ? p : undefined;
    }, 60_000);
    const logs = await core.readNamespacedPodLog({ name: "whoami", namespace: "default" });
    expect({ phase, user: (JSON.parse(logs) as { status?: { userInfo?: { username?: string } } }).status?.userInfo?.username }).toEqual({
      phase: "Succeeded",
      user: "system:serviceaccount:default:default",
    });
    const env = await runPod(started().kubeConfig, started().images.busybox, "service-env", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT");
    expect(env.logs).toBe(`${KUBERNETES_SERVICE_IP}:443\n`);
  });

  it("drops a pod's packets to anything beyond the machine (the egress guard counts them)", async () => {
    const gateway = /default via (\S+)/.exec(run("ip", ["-4", "route", "show", "default"]))?.[1] ?? "192.0.2.1";
    const drops = () => {
      const line = run("iptables", ["-t", "mangle", "-v", "-x", "-n", "-L", "APPSNAP-GUARD"]).split("\n").find((l) => /DROP\s+\S+\s+--\s+appsnap0\s+\*/.test(l.trim()));
      return Number(line?.trim().split(/\s+/)[0] ?? NaN);
    };
    const dropsBefore = drops();
    const { phase, logs } = await runPod(started().kubeConfig, started().images.busybox, "escape", `exec 2>/dev/null; timeout 4 wget -q -O - http://${gateway}/ && echo LEFT || echo blocked`);
    expect({ phase, logs }).toEqual({ phase: "Succeeded", logs: "blocked\n" });
    expect(drops()).toBeGreaterThan(dropsBefore);
  });

  it("stops and leaves the host exactly as it found it", async () => {
    const undone = await started().stop();
    expect(undone.join("\n")).toMatch(/killed \d+ processes in cgroup/);
    expect(undone[undone.length - 1]).toMatch(/egress guard removed/);
    expect(readable(hostSnapshot())).toEqual(before);
    expect(spawnSync("ip", ["link", "show", "appsnap0"]).status).not.toBe(0);
  });
});
