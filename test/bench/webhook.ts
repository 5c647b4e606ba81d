// `make bench` part 1: the pod webhook against a floor server, and inside the real apiserver.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parse, stringify } from "yaml";
import { createCa, issueCertificate } from "../../src/certs/authority.js";
import { kubeRequest } from "../../src/kube/request.js";
import type { Pod } from "../../src/pods/pod.js";
import { cacheDir, pinnedVersions, repoRoot } from "../cluster/binaries.js";
import { startControlPlane } from "../cluster/controlPlane.js";
import { installAppSnapshotsCrds } from "../cluster/crds.js";
import { freePort, startChild, type Child } from "../cluster/processes.js";
import { until } from "../cluster/wait.js";
import { applyPodMutatingWebhook, webhookProcess } from "../cluster/webhook.js";
import { applyObjects, parseManifests } from "../../src/kube/apply.js";
import { machine, ratio, writeSection } from "./report.js";
import { admissionReview } from "../cluster/reviews.js";
import { KYVERNO_WEBHOOK, startKyverno } from "./kyvernoPeer.js";

const log = (line: string) => console.log(`[bench] ${line}`);
const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-bench-"));
const debRoot = path.join(cacheDir, "deb", "root");
const wrk = path.join(debRoot, "usr", "bin", "wrk");
const hey = path.join(cacheDir, "bin", `hey-${pinnedVersions().HEY}`);
const SATURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

/** A realistic pod of about 10 KB: the StatefulSet fixture with the env, probes and labels real pods carry. */
function benchPod(): Pod {
  const pod = parse(readFileSync(path.join(repoRoot, "test/fixtures/pods/postgres-statefulset.yaml"), "utf8")) as Pod;
  pod.metadata!.labels = { ...pod.metadata!.labels, tier: "database", "app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": "shop", "app.kubernetes.io/version": "17.2", "helm.sh/chart": "postgres-16.1.0" };
  const container = pod.spec!.containers![0]!;
  container.env = Array.from({ length: 95 }, (_, i) => ({ name: `POSTGRES_SETTING_${i}`, value: `value-${i}-${"x".repeat(40)}` }));
  container.resources = { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } };
  container.readinessProbe = { exec: { command: ["pg_isready", "-U", "app"] }, periodSeconds: 10 };
  container.livenessProbe = { exec: { command: ["pg_isready", "-U", "app"] }, initialDelaySeconds: 30 };
  return pod;
}

function benchReview(pod: Pod): string {
  const review = admissionReview({ group: "", kind: "Pod", resource: "pods", namespace: "shop", operation: "CREATE", object: pod, uid: "5f0b2c1e-8d2e-4c55-a0a4-1b0d7c2e9f11" });
  return JSON.stringify({ ...review, request: { ...review.request, userInfo: { username: "system:serviceaccount:kube-system:statefulset-controller", groups: ["system:serviceaccounts"] }, dryRun: false } });
}

/** 20 policies; the matching one is the last namespaced policy, so every other one is evaluated first. */
function twentyPolicies(): string {
  const docs: object[] = [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { backup: "nightly" } } }];
  for (let i = 0; i < 10; i++) {
    docs.push({ apiVersion: "appsnapshots.io/v1alpha1", kind: "SnapshotPolicy", metadata: { name: `p${String(i).padStart(2, "0")}`, namespace: "shop" }, spec: { podSelector: { matchLabels: { app: `other-${i}` } } } });
  }
  docs.push({
    apiVersion: "appsnapshots.io/v1alpha1",
    kind: "SnapshotPolicy",
    metadata: { name: "z-databases", namespace: "shop" },
    spec: { podSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["database"] }] }, volumes: { exclude: ["tmp*"] }, hooks: { preBackup: { command: ["/bin/sh", "-c", "pg_dump app > /var/lib/postgresql/data/dump"], timeout: "10m" }, postRestore: { command: ["pg_isready"] } } },
  });
  for (let i = 0; i < 9; i++) docs.push({ apiVersion: "appsnapshots.io/v1alpha1", kind: "ClusterSnapshotPolicy", metadata: { name: `c${i}` }, spec: { namespaceSelector: { matchLabels: { backup: "nightly" } } } });
  return docs.map((d) => stringify(d)).join("---\n");
}

interface Server {
  name: string;
  url: string;
  pid: number;
  stop: () => void;
}

async function startServer(name: string, command: string, args: string[], port: number, env: NodeJS.ProcessEnv = {}): Promise<Server> {
  const child = startChild(name, command, args, path.join(dir, `${name.replace(/\W+/g, "-")}.log`), env).process;
  const url = `https://127.0.0.1:${port}`;
  await until(`${name} to listen`, () =>
    new Promise<true | undefined>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(undefined));
    }),
  );
  return { name, url, pid: child.pid!, stop: () => child.kill("SIGTERM") };
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

function saturation(url: string, body: string): number {
  const env = { ...process.env, BODY: body, LD_LIBRARY_PATH: path.join(debRoot, "usr/lib/x86_64-linux-gnu") };
  const args = ["-t1", "-c16", `-s${path.join(repoRoot, "test/bench/post.lua")}`, `${url}/mutate/pods?timeout=10s`];
  execFileSync(wrk, ["-d3s", ...args], { env }); // warm-up: JIT, TLS sessions
  const out = execFileSync(wrk, [`-d${SATURATION_SECONDS}s`, ...args], { env, encoding: "utf8" });
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} error responses:\n${out}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
}

function fixedRate(url: string, body: string, seconds: number): { p50: number; p99: number; rate: number } {
  // 10 workers × 100 req/s each = 1,000 req/s over keep-alive HTTPS.
  const out = execFileSync(hey, ["-z", `${seconds}s`, "-c", "10", "-q", "100", "-m", "POST", "-T", "application/json", "-D", body, `${url}/mutate/pods?timeout=10s`], { encoding: "utf8" });
  const pct = (p: number) => Number(new RegExp(`${p}%+ in ([\\d.]+) secs`).exec(out)![1]) * 1000;
  const statuses = out.split("Status code distribution:")[1] ?? "";
  if (!/\[200\]\s+\d+ responses/.test(statuses) || /\[(?!200\])\d{3}\]/.test(statuses) || out.includes("Error distribution")) {
    throw new Error(`hey saw failed or non-200 responses:\n${out}`);
  }
  return { p50: pct(50), p99: pct(99), rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]) };
}

/** Quantile from a Prometheus histogram, interpolated inside the bucket (as histogram_quantile does). */
function histogramQuantile(buckets: Array<[number, number]>, q: number): number {
  const total = buckets.at(-1)![1];
  const rank = q * total;
  let previous: [number, number] = [0, 0];
  for (const bucket of buckets) {
    if (bucket[1] >= rank) {
      if (!Number.isFinite(bucket[0])) return previous[0];
      return previous[0] + ((bucket[0] - previous[0]) * (rank - previous[1])) / Math.max(bucket[1] - previous[1], 1);
    }
    previous = bucket;
  }
  return previous[0];
}

interface AdmissionDurations {
  count: number;
  sum: number;
  /** Cumulative buckets: [upper bound in seconds, count]. */
  buckets: Array<[number, number]>;
}

/** The apiserver's admission-duration histogram for CREATE (only pods are created here) through the webhooks `named` picks, summed over them. */
function admissionDurations(metrics: string, named: (name: string) => boolean): AdmissionDurations {
  const series = metrics.split("\n").filter((l) => l.startsWith("apiserver_admission_webhook_admission_duration_seconds") && l.includes('operation="CREATE"') && named(/name="([^"]+)"/.exec(l)?.[1] ?? ""));
  const value = (l: string) => Number(l.split(" ").at(-1));
  const byBound = new Map<number, number>();
  for (const l of series.filter((x) => x.includes("_bucket{"))) {
    const bound = Number(/le="([^"]+)"/.exec(l)![1]!.replace("+Inf", "Infinity"));
    byBound.set(bound, (byBound.get(bound) ?? 0) + value(l));
  }
  const total = (suffix: string) => series.filter((l) => l.includes(`${suffix}{`)).reduce((a, l) => a + value(l), 0);
  const count = total("_count");
  if (count === 0) throw new Error("the apiserver recorded no admission call for that webhook");
  return { count, sum: total("_sum"), buckets: [...byBound.entries()].sort((a, b) => a[0] - b[0]) };
}

/** `oursRss`: our webhook's peak RSS in the runs above, beside Kyverno's here. */
async function apiserverRun(oursRss: number): Promise<string[]> {
  const plane = await startControlPlane({ log });
  const webhook = await webhookProcess({ kubeconfigPath: plane.kubeconfigPath });
  let kyverno: Child | undefined;
  try {
    const kc = plane.kubeConfig;
    await installAppSnapshotsCrds(kc);
    await kubeRequest(kc, "POST", "/api/v1/namespaces", { metadata: { name: "shop", labels: { backup: "nightly" } } });
    await applyObjects(kc, parseManifests(twentyPolicies()).filter((o) => o.kind !== "Namespace"));
    const pod = benchPod();
    const create = async (name: string) => {
      const started = process.hrtime.bigint();
      await kubeRequest(kc, "POST", "/api/v1/namespaces/shop/pods", { ...pod, metadata: { ...pod.metadata, name, namespace: "shop" } });
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Baseline: the same creates with no webhook configured.
    for (let i = 0; i < 20; i++) await create(`warm-${i}`);
    const without: number[] = [];
    for (let i = 0; i < 300; i++) without.push(await create(`plain-${i}`));

    await webhook.start();
    await applyPodMutatingWebhook(kc, { name: "app-snapshots", url: `${webhook.url}/mutate/pods`, caPem: webhook.caPem });
    await until("the webhook to mutate", async () => {
      const res = await kubeRequest(kc, "POST", "/api/v1/namespaces/shop/pods?dryRun=All", { ...pod, metadata: { ...pod.metadata, name: "canary" } });
      return (res.body as Pod).metadata?.annotations?.["appsnapshots.io/policy"];
    });
    const withWebhook: number[] = [];
    for (let i = 0; i < 300; i++) withWebhook.push(await create(`hooked-${i}`));
    const ours = admissionDurations(String((await kubeRequest(kc, "GET", "/metrics")).body), (name) => name === "pods.appsnapshots.io");

    // The peer: Kyverno with a policy that lists every volume for Velero, alone behind the same apiserver.
    await kubeRequest(kc, "DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/app-snapshots");
    log(`starting Kyverno ${pinnedVersions().KYVERNO} as the second webhook`);
    kyverno = await startKyverno(kc, plane.kubeconfigPath, dir);
    await until(
      "Kyverno to annotate a pod's volumes",
      async () => {
        const res = await kubeRequest(kc, "POST", "/api/v1/namespaces/shop/pods?dryRun=All", { ...pod, metadata: { ...pod.metadata, name: "kyverno-canary" } });
        return (res.body as Pod).metadata?.annotations?.["backup.velero.io/backup-volumes"];
      },
      120_000,
      500,
    );
    for (let i = 0; i < 20; i++) await create(`kyverno-warm-${i}`);
    const withKyverno: number[] = [];
    for (let i = 0; i < 300; i++) withKyverno.push(await create(`kyverno-${i}`));
    const peer = admissionDurations(String((await kubeRequest(kc, "GET", "/metrics")).body), (name) => KYVERNO_WEBHOOK.test(name));
    const kyvernoRss = peakRssMiB(kyverno.process.pid!);

    const { count, sum, buckets } = ours;
    const under5 = buckets.find((b) => b[0] === 0.005)![1];
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const p99 = (xs: number[]) => sorted(xs)[Math.floor(xs.length * 0.99)]!;
    const meanMs = (d: AdmissionDurations) => (d.sum / d.count) * 1000;
    return [
      `300 pod creates through kube-apiserver ${pinnedVersions().KUBERNETES} (one client, sequential), the ~10 KB pod, 20 policies:`,
      "",
      "| measure | value |",
      "| --- | --- |",
      `| apiserver's \`apiserver_admission_webhook_admission_duration_seconds\` for our webhook: count | ${count} (300 creates + canaries, reinvocations included) |`,
      `| … mean | ${((sum / count) * 1000).toFixed(2)} ms |`,
      `| … share of calls ≤ 5 ms (bucket \`le="0.005"\`) | ${((under5 / count) * 100).toFixed(1)} % |`,
      `| … p50 / p99 (interpolated in the apiserver's buckets, so coarse) | ${(histogramQuantile(buckets, 0.5) * 1000).toFixed(2)} ms / ${(histogramQuantile(buckets, 0.99) * 1000).toFixed(2)} ms |`,
      `| client-side create latency without a webhook: mean / p99 | ${mean(without).toFixed(2)} ms / ${p99(without).toFixed(2)} ms |`,
      `| client-side create latency with our webhook: mean / p99 | ${mean(withWebhook).toFixed(2)} ms / ${p99(withWebhook).toFixed(2)} ms |`,
      `| with / without (mean) | ${ratio(mean(withWebhook), mean(without))} |`,
      "",
      `The same 300 creates with Kyverno ${pinnedVersions().KYVERNO} as the only webhook (built from the Go module proxy, run outside a cluster against the same apiserver; \`test/bench/kyvernoPeer.ts\`), with a policy written from the documented behaviour of Kyverno's published Velero policy \`backup-all-volumes\` (\`test/bench/peers/backup-all-volumes.yaml\`: annotate every pod with volumes with \`backup.velero.io/backup-volumes\` listing them); Kyverno's own policies module is refused by the Go module proxy. Speed ratios are Kyverno's time over ours (above 1: ours is faster):`,
      "",
      "| measure | app-snapshots | Kyverno | speed ratio |",
      "| --- | --- | --- | --- |",
      `| apiserver-observed admission duration, mean | ${meanMs(ours).toFixed(2)} ms | ${meanMs(peer).toFixed(2)} ms | ${ratio(meanMs(peer), meanMs(ours))} |`,
      `| … p50 / p99 (the apiserver's buckets) | ${(histogramQuantile(ours.buckets, 0.5) * 1000).toFixed(2)} / ${(histogramQuantile(ours.buckets, 0.99) * 1000).toFixed(2)} ms | ${(histogramQuantile(peer.buckets, 0.5) * 1000).toFixed(2)} / ${(histogramQuantile(peer.buckets, 0.99) * 1000).toFixed(2)} ms | ${ratio(histogramQuantile(peer.buckets, 0.5), histogramQuantile(ours.buckets, 0.5))} / ${ratio(histogramQuantile(peer.buckets, 0.99), histogramQuantile(ours.buckets, 0.99))} |`,
      `| … calls counted | ${ours.count} | ${peer.count} | |`,
      `| client-side create latency: mean / p99 | ${mean(withWebhook).toFixed(2)} / ${p99(withWebhook).toFixed(2)} ms | ${mean(withKyverno).toFixed(2)} / ${p99(withKyverno).toFixed(2)} ms | ${ratio(mean(withKyverno), mean(withWebhook))} / ${ratio(p99(withKyverno), p99(withWebhook))} |`,
      `| peak RSS of the webhook process (VmHWM; ours from the wrk and hey runs above) | ${oursRss.toFixed(0)} MiB | ${kyvernoRss.toFixed(0)} MiB | ${ratio(kyvernoRss, oursRss)} |`,
    ];
  } finally {
    await kyverno?.stop(3_000);
    await webhook.dispose();
    await plane.stop();
  }
}

async function main(): Promise<void> {
  const ca = createCa({ commonName: "bench-ca", validityDays: 1 });
  const cert = issueCertificate(ca, { commonName: "bench", ipAddresses: ["127.0.0.1"], usage: "server", validityDays: 1 });
  const certFile = path.join(dir, "tls.crt");
  const keyFile = path.join(dir, "tls.key");
  writeFileSync(certFile, cert.certPem);
  writeFileSync(keyFile, cert.keyPem);
  const stateFile = path.join(dir, "policies.yaml");
  writeFileSync(stateFile, twentyPolicies());
  const body = path.join(dir, "review.json");
  const review = benchReview(benchPod());
  writeFileSync(body, review);
  log(`review body ${review.length} bytes; 20 policies`);

  const [oursPort, floorPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const ours = await startServer("app-snapshots webhook", process.execPath, [path.join(repoRoot, "dist/src/cli.js"), "webhook", "--state", stateFile, "--tls-cert", certFile, "--tls-key", keyFile, "--port", String(oursPort), "--health-port", String(healthPort), "--drain-delay", "0"], oursPort, { LOG_LEVEL: "warn" });
  const floor = await startServer("floor", process.execPath, [path.join(repoRoot, "test/bench/floor.mjs"), certFile, keyFile, String(floorPort)], floorPort);
  const expressPort = await freePort();
  const expressFloor = await startServer("express floor", process.execPath, [path.join(repoRoot, "test/bench/express-floor.mjs"), certFile, keyFile, String(expressPort)], expressPort);
  const check = JSON.parse(execFileSync("curl", ["-sk", "-H", "content-type: application/json", "--data-binary", `@${body}`, `${ours.url}/mutate/pods`], { encoding: "utf8" })) as { response: { patch?: string } };
  if (!check.response.patch) throw new Error("the benchmark review is not being mutated; the run would measure the wrong path");

  const results: Record<string, { sat: number; fixed: ReturnType<typeof fixedRate>; rss: number }> = {};
  try {
    for (const server of [floor, expressFloor, ours]) {
      log(`${server.name}: saturation (wrk, 1 thread, 16 connections, ${SATURATION_SECONDS}s)`);
      const sat = saturation(server.url, body);
      log(`${server.name}: ${sat.toFixed(0)} req/s; fixed 1,000 req/s (hey, 10 connections, 15s)`);
      const fixed = fixedRate(server.url, body, 15);
      results[server.name] = { sat, fixed, rss: peakRssMiB(server.pid) };
      log(`${server.name}: p50 ${fixed.p50.toFixed(2)} ms, p99 ${fixed.p99.toFixed(2)} ms at ${fixed.rate.toFixed(0)} req/s`);
    }
  } finally {
    ours.stop();
    floor.stop();
    expressFloor.stop();
  }
  const o = results[ours.name]!;
  const f = results[floor.name]!;
  const e = results[expressFloor.name]!;

  log("inside the real apiserver: 300 pod creates");
  const apiserver = await apiserverRun(o.rss);

  const lines = [
    "## Pod admission webhook",
    "",
    `Run ${new Date().toISOString().slice(0, 16)}Z on ${machine()}. Command: \`make bench\` (\`test/bench/webhook.ts\`).`,
    `Load: POST of a ${(review.length / 1024).toFixed(1)} KB pod AdmissionReview over HTTPS keep-alive, 20 policies loaded (the match is the 11th evaluated).`,
    "Floor: bare `node:https` that parses the JSON body and returns a fixed AdmissionReview (`test/bench/floor.mjs`). Express floor: the same answer from express 5 with `express.json()` (`test/bench/express-floor.mjs`), i.e. what the framework alone costs. Load generators share the machine's 2 cores with the servers.",
    "",
    "| measure | app-snapshots | floor | express floor | ours / floor | ours / express floor | target |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    `| saturation throughput (wrk -t1 -c16, ${SATURATION_SECONDS} s) | ${o.sat.toFixed(0)} req/s | ${f.sat.toFixed(0)} req/s | ${e.sat.toFixed(0)} req/s | ${ratio(o.sat, f.sat)} | ${ratio(o.sat, e.sat)} | ≥ 0.6 of floor |`,
    `| p50 latency at 1,000 req/s (hey -c10 -q100, 15 s) | ${o.fixed.p50.toFixed(2)} ms | ${f.fixed.p50.toFixed(2)} ms | ${e.fixed.p50.toFixed(2)} ms | ${ratio(o.fixed.p50, f.fixed.p50)} | ${ratio(o.fixed.p50, e.fixed.p50)} | |`,
    `| p99 latency at 1,000 req/s | ${o.fixed.p99.toFixed(2)} ms | ${f.fixed.p99.toFixed(2)} ms | ${e.fixed.p99.toFixed(2)} ms | ${ratio(o.fixed.p99, f.fixed.p99)} | ${ratio(o.fixed.p99, e.fixed.p99)} | ≤ 5 ms |`,
    `| achieved rate in the fixed-rate run | ${o.fixed.rate.toFixed(0)} req/s | ${f.fixed.rate.toFixed(0)} req/s | ${e.fixed.rate.toFixed(0)} req/s | | | |`,
    `| peak RSS (VmHWM) | ${o.rss.toFixed(0)} MiB | ${f.rss.toFixed(0)} MiB | ${e.rss.toFixed(0)} MiB | ${ratio(o.rss, f.rss)} | ${ratio(o.rss, e.rss)} | |`,
    "",
    ...apiserver,
  ];
  writeSection("webhook", lines.join("\n"));
  console.log(lines.join("\n"));
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
