// `make bench` part 2 (alone: `make bench-storage`): the object store (src/storage) against nginx
// sendfile and a raw write + fdatasync + rename loop, every baseline measured in the same run.
// Goals: G1, G2, G4 and G6 of the storage design's reference figures (s3.md §11.3). Everything lives in one temp dir.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { HashPool } from "../../src/storage/hashPool.js";
import { ObjectStore } from "../../src/storage/store.js";
import { repoRoot } from "../cluster/binaries.js";
import { freePort, startChild, type Child } from "../cluster/processes.js";
import { md5Rate, nginxVersion, rawDurableWrite, runBench, startNginx as startNginxIn, startServer as startServerIn, wrkRun, type BenchDir } from "./benchServers.js";
import { machine, ratio, renderSection, type Row } from "./report.js";
import { cpuSeconds, repeatedBody, statusKiB } from "./storageHelpers.js";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** BENCH_STORAGE_SCALE=0.05 shrinks every transfer for a quick smoke run of the script itself. */
const SCALE = Number(process.env.BENCH_STORAGE_SCALE ?? 1);
const mib = (bytes: number) => Math.max(MiB, Math.round((bytes * SCALE) / MiB) * MiB);
const LARGE_BYTES = mib(GiB);
const HUGE_BYTES = mib(10 * GiB);
/** Bytes written per write configuration, in two interleaved passes. */
const WRITE_BYTES = mib(2 * GiB);
const OBJECT_BYTES = 25 * MiB;
const SMALL_BYTES = 4 * KiB;
const WRK_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const GET_ROUNDS = 3;
const BUCKET = "bench";

const execFileAsync = promisify(execFile);
const log = (line: string) => console.log(`[bench:storage] ${line}`);
const began = performance.now();
const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-storage-bench-"));
const root = path.join(dir, "store");
const cli = path.join(repoRoot, "dist/src/cli.js");
const cores = os.availableParallelism();
const children: Child[] = [];
const bench: BenchDir = { dir, children };

const gibps = (bytes: number, seconds: number) => bytes / GiB / seconds;
const fmt = (rate: number) => `${rate.toFixed(2)} GiB/s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = (since: number) => (performance.now() - since) / 1000;

// --- servers ---------------------------------------------------------------------------------

const startServer = (name: string, command: string, args: string[], probeUrl: string, env: NodeJS.ProcessEnv = {}) => startServerIn(bench, name, command, args, probeUrl, env);
const startNginx = (port: number) => startNginxIn(bench, port, root);

// --- clients ---------------------------------------------------------------------------------

interface Download {
  code: number;
  bytes: number;
  /** curl's average, bytes per second. */
  speed: number;
}

async function download(url: string, expectBytes: number): Promise<Download> {
  const { stdout } = await execFileAsync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}", url]);
  const [code, bytes, speed] = stdout.trim().split(" ").map(Number) as [number, number, number];
  if (code !== 200 || bytes !== expectBytes) throw new Error(`GET ${url.split("?")[0]}: HTTP ${code}, ${bytes} bytes (expected 200 and ${expectBytes})`);
  return { code, bytes, speed };
}

/** GiB/s of one download. */
async function getRate(url: string, bytes: number): Promise<number> {
  return (await download(url, bytes)).speed / GiB;
}

/** Aggregate GiB/s of `streams` simultaneous downloads, over the wall-clock time of all of them. */
async function parallelGetRate(url: string, bytes: number, streams: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: streams }, () => download(url, bytes)));
  return gibps(streams * bytes, seconds(t0));
}

/** Peak VmRSS of `pid`, sampled every 100 ms until stopped. */
function rssSampler(pid: number): { stop(): number } {
  let peak = statusKiB(pid, "VmRSS");
  const timer = setInterval(() => {
    const now = statusKiB(pid, "VmRSS");
    if (now > peak) peak = now;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return peak / KiB;
    },
  };
}

// --- durable writes --------------------------------------------------------------------------

interface Tally {
  bytes: number;
  seconds: number;
  /** CPU seconds of this process (event loop, hash workers, libuv threads). */
  cpu: number;
  /** … of which the main thread (the event loop). */
  mainCpu: number;
  /** GiB/s of each pass. */
  passes: number[];
}

const mainThread = `self/task/${process.pid}`;

const rate = (t: Tally) => gibps(t.bytes, t.seconds);

/** `streams` concurrent loops writing `objects` objects between them; adds to the tally. */
async function writeLoop(tally: Tally, streams: number, objects: number, write: (stream: number, index: number) => Promise<void>): Promise<void> {
  const perStream = Math.ceil(objects / streams);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const main0 = cpuSeconds(mainThread);
  await Promise.all(
    Array.from({ length: streams }, async (_, stream) => {
      for (let i = 0; i < perStream; i++) await write(stream, i);
    }),
  );
  tally.seconds += seconds(t0);
  tally.passes.push(gibps(streams * perStream * OBJECT_BYTES, seconds(t0)));
  const cpu = process.cpuUsage(cpu0);
  tally.cpu += (cpu.user + cpu.system) / 1e6;
  tally.mainCpu += cpuSeconds(mainThread) - main0;
  tally.bytes += streams * perStream * OBJECT_BYTES;
}

// --- the run ---------------------------------------------------------------------------------

async function main(): Promise<string> {
  const loadBefore = os.loadavg()[0]!;
  log(`temp dir ${dir}; ${cores} cores; 1-minute load average ${loadBefore.toFixed(2)}`);
  mkdirSync(root);
  const keyFile = path.join(dir, "lvp-signing.key");
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const pool = new HashPool();
  // shared: the PUT child process opens a store on the same root and must not reclaim our temp folders.
  const store = await ObjectStore.open(root, { durability: "full", shared: true, hashPool: pool });
  const noSync = await ObjectStore.open(root, { durability: "none", shared: true, hashPool: pool });
  try {
    await store.createBucket(BUCKET);

    // --- objects and servers ---
    const LARGE_KEY = "large/1gib.bin";
    const SMALL_KEY = "small/4kib.bin";
    const HUGE_KEY = "huge/10gib.bin";
    let t0 = performance.now();
    await store.put(BUCKET, LARGE_KEY, repeatedBody(randomBytes(64 * MiB), LARGE_BYTES, MiB));
    log(`wrote the ${LARGE_BYTES / MiB} MiB object through the store in ${seconds(t0).toFixed(1)} s`);
    await store.put(BUCKET, SMALL_KEY, repeatedBody(randomBytes(SMALL_BYTES), SMALL_BYTES));

    const [lvpPort, healthPort, nginxPort, floorPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const lvpBase = `http://127.0.0.1:${lvpPort}`;
    const nginxBase = `http://127.0.0.1:${nginxPort}`;
    // Read-only, as an LVP file server usually is: it leaves the benchmark's temp files alone.
    const lvp = await startServer(
      "lvp-server",
      process.execPath,
      [cli, "storage", "--root", root, "--read-only", "--lvp-listen", `127.0.0.1:${lvpPort}`, "--health-listen", `127.0.0.1:${healthPort}`, "--lvp-signing-key-file", keyFile, "--drain-delay", "0"],
      `${lvpBase}/livez`,
      { LOG_LEVEL: "warn" },
    );
    const lvpPid = lvp.process.pid!;
    await startNginx(nginxPort);
    await startServer("node-floor", process.execPath, [path.join(repoRoot, "dist/test/bench/storageFloor.js"), root, String(floorPort)], `http://127.0.0.1:${floorPort}/`);
    const sign = (key: string) =>
      execFileSync(process.execPath, [cli, "storage", "sign", `s3://${BUCKET}/${key}`, "--ttl", "1h", "--base-url", lvpBase, "--lvp-signing-key-file", keyFile], { encoding: "utf8" }).trim();
    const urls = {
      large: { ours: sign(LARGE_KEY), nginx: `${nginxBase}/${BUCKET}/${LARGE_KEY}`, floor: `http://127.0.0.1:${floorPort}/${BUCKET}/${LARGE_KEY}` },
      small: { ours: sign(SMALL_KEY), nginx: `${nginxBase}/${BUCKET}/${SMALL_KEY}`, floor: `http://127.0.0.1:${floorPort}/${BUCKET}/${SMALL_KEY}` },
    };
    // A URL signed for another key must be refused, or the run would not measure the signed path.
    const tampered = await fetch(urls.small.ours.replace(SMALL_KEY, LARGE_KEY));
    await tampered.arrayBuffer();
    if (tampered.status !== 403) throw new Error(`a tampered signed URL got HTTP ${tampered.status}, not 403`);

    // --- 1. GET of the large object ---
    log(`GET ${LARGE_BYTES / MiB} MiB: warm-up, then ${GET_ROUNDS} rounds each of nginx, ours and a bare Node server, alternating`);
    await getRate(urls.large.nginx, LARGE_BYTES);
    await getRate(urls.large.ours, LARGE_BYTES);
    await getRate(urls.large.floor, LARGE_BYTES);
    const get1 = { ours: [] as number[], nginx: [] as number[], floor: [] as number[] };
    const get2 = { ours: [] as number[], nginx: [] as number[] };
    for (let round = 0; round < GET_ROUNDS; round++) {
      get1.nginx.push(await getRate(urls.large.nginx, LARGE_BYTES));
      get1.ours.push(await getRate(urls.large.ours, LARGE_BYTES));
      get1.floor.push(await getRate(urls.large.floor, LARGE_BYTES));
      get2.nginx.push(await parallelGetRate(urls.large.nginx, LARGE_BYTES, 2));
      get2.ours.push(await parallelGetRate(urls.large.ours, LARGE_BYTES, 2));
      log(`  round ${round + 1}: 1 stream ours ${fmt(get1.ours.at(-1)!)} vs nginx ${fmt(get1.nginx.at(-1)!)} vs Node floor ${fmt(get1.floor.at(-1)!)}; 2 streams ours ${fmt(get2.ours.at(-1)!)} vs nginx ${fmt(get2.nginx.at(-1)!)}`);
    }

    // --- 2. 4 KiB GET rate ---
    log(`4 KiB GET: wrk -t1 -c32, 1 s warm-up then ${WRK_SECONDS} s, nginx, a bare Node stat + readFile server, then ours`);
    wrkRun(urls.small.nginx, 1);
    const smallNginx = wrkRun(urls.small.nginx, WRK_SECONDS);
    wrkRun(urls.small.floor, 1);
    const smallFloor = wrkRun(urls.small.floor, WRK_SECONDS);
    wrkRun(urls.small.ours, 1);
    const serverCpu0 = cpuSeconds(lvpPid);
    t0 = performance.now();
    const smallOurs = wrkRun(urls.small.ours, WRK_SECONDS);
    const serverCores = (cpuSeconds(lvpPid) - serverCpu0) / seconds(t0);
    log(`  nginx ${smallNginx.rate.toFixed(0)} req/s p99 ${smallNginx.p99Ms.toFixed(2)} ms; Node floor ${smallFloor.rate.toFixed(0)} req/s p99 ${smallFloor.p99Ms.toFixed(2)} ms; ours ${smallOurs.rate.toFixed(0)} req/s p99 ${smallOurs.p99Ms.toFixed(2)} ms, the LVP server busy ${serverCores.toFixed(2)} cores`);

    // --- 3. durable 25 MiB writes ---
    const body = randomBytes(OBJECT_BYTES);
    const md5Before = md5Rate(body);
    log(`MD5 on one core: ${fmt(md5Before)}`);
    const rawTemp = path.join(dir, "raw-tmp");
    const rawDir = path.join(dir, "raw");
    mkdirSync(rawTemp);
    mkdirSync(rawDir);
    const configs = ["raw", "full", "none"] as const;
    const tallies = new Map<string, Tally>();
    const objectsPerPass = Math.max(2, Math.round(WRITE_BYTES / 2 / OBJECT_BYTES));
    for (let pass = 0; pass < 2; pass++) {
      for (const streams of [1, 2]) {
        for (const config of configs) {
          const name = `${config}-${streams}`;
          const tally = tallies.get(name) ?? { bytes: 0, seconds: 0, cpu: 0, mainCpu: 0, passes: [] };
          tallies.set(name, tally);
          const keys: string[] = [];
          await writeLoop(tally, streams, objectsPerPass, async (stream, i) => {
            const key = `w/${name}/${pass}-${stream}-${i}`;
            if (config === "raw") return rawDurableWrite(body, rawTemp, rawDir, `${pass}-${stream}-${i}`);
            keys.push(key);
            await (config === "full" ? store : noSync).put(BUCKET, key, repeatedBody(body, OBJECT_BYTES));
          });
          // Bound the disk used, and start the next configuration with nothing left to write back.
          for (const key of keys) await noSync.delete(BUCKET, key);
          await rm(rawDir, { recursive: true });
          mkdirSync(rawDir);
          execFileSync("sync");
        }
      }
      log(`  pass ${pass + 1}: ${[...tallies].map(([name, t]) => `${name} ${fmt(t.passes.at(-1)!)}`).join(", ")}`);
    }
    const md5After = md5Rate(body);
    const md5 = Math.max(md5Before, md5After);
    log(`MD5 on one core again: ${fmt(md5After)}; using the higher, ${fmt(md5)}`);
    const w = (name: string) => rate(tallies.get(name)!);
    /** CPU seconds per GiB written: the whole process, and its event loop. */
    const cpuPerGiB = (name: string) => tallies.get(name)!.cpu / (tallies.get(name)!.bytes / GiB);
    const mainCpuPerGiB = (name: string) => tallies.get(name)!.mainCpu / (tallies.get(name)!.bytes / GiB);
    log(`  CPU seconds per GiB (event loop's share): ${[...tallies.keys()].map((name) => `${name} ${cpuPerGiB(name).toFixed(2)} (${mainCpuPerGiB(name).toFixed(2)})`).join(", ")}; MD5 alone ${(1 / md5).toFixed(2)}`);

    // --- 4. memory during a 10 GiB transfer ---
    log(`${HUGE_BYTES / GiB} GiB durable PUT in a child process (64 KiB chunks of a repeating 1 MiB block)`);
    const putLog = path.join(dir, "put-child.log");
    const child = startChild("put-child", process.execPath, [path.join(repoRoot, "dist/test/bench/storagePut.js"), root, BUCKET, HUGE_KEY, String(HUGE_BYTES)], putLog);
    children.push(child);
    const childRss = rssSampler(child.process.pid!);
    const code = await child.exited;
    const childSampledPeak = childRss.stop();
    if (code !== 0) throw new Error(`the PUT child exited with ${code}:\n${child.tail()}`);
    const putLine = readFileSync(putLog, "utf8").trim().split("\n").filter((l) => l.startsWith("{")).at(-1)!;
    const put = JSON.parse(putLine) as { seconds: number; size: number; etag: string; idleRssKiB: number; peakRssKiB: number };
    const hugePut = gibps(put.size, put.seconds);
    log(`  ${fmt(hugePut)}; child RSS ${(put.idleRssKiB / KiB).toFixed(0)} MiB before the PUT, peak (VmHWM) ${(put.peakRssKiB / KiB).toFixed(0)} MiB (sampled peak ${childSampledPeak.toFixed(0)} MiB)`);

    const hugeUrl = sign(HUGE_KEY);
    const serverIdle = statusKiB(lvpPid, "VmRSS") / KiB;
    const serverRss = rssSampler(lvpPid);
    t0 = performance.now();
    await download(hugeUrl, HUGE_BYTES);
    const hugeGet = gibps(HUGE_BYTES, seconds(t0));
    const serverPeak = serverRss.stop();
    log(`  GET through the LVP server: ${fmt(hugeGet)}; server RSS ${serverIdle.toFixed(0)} MiB before, peak ${serverPeak.toFixed(0)} MiB during`);
    await noSync.delete(BUCKET, HUGE_KEY);

    // --- listing 10k keys under a prefix (G8) ---
    const LIST_KEYS = Math.max(100, Math.round(10_000 * SCALE));
    t0 = performance.now();
    for (let i = 0; i < LIST_KEYS; i += 64) {
      await Promise.all(Array.from({ length: Math.min(64, LIST_KEYS - i) }, (_, j) => noSync.put(BUCKET, `kopia/p${String(i + j).padStart(6, "0")}`, repeatedBody(randomBytes(64), 64))));
    }
    log(`wrote ${LIST_KEYS} small objects under kopia/ in ${seconds(t0).toFixed(1)} s`);
    const listRuns: number[] = [];
    for (let round = 0; round < 3; round++) {
      t0 = performance.now();
      let listed = 0;
      let token: string | undefined;
      do {
        const page = await store.list(BUCKET, { prefix: "kopia/", ...(token ? { continuationToken: token } : {}) });
        listed += page.objects.length;
        token = page.nextContinuationToken;
      } while (token);
      if (listed !== LIST_KEYS) throw new Error(`listed ${listed} keys, expected ${LIST_KEYS}`);
      listRuns.push(seconds(t0));
    }
    const listSeconds = median(listRuns);
    log(`  listing ${LIST_KEYS} keys (1,000 per page): ${(listSeconds * 1000).toFixed(0)} ms (median of 3)`);

    // --- report ---
    const g1 = { ours: median(get1.ours), nginx: median(get1.nginx), floor: median(get1.floor) };
    const g2 = { ours: median(get2.ours), nginx: median(get2.nginx) };
    const twoStreamBase = Math.min(cores * md5, w("raw-2"));
    const met = {
      get1: g1.ours >= 0.5 * g1.nginx,
      get2: g2.ours >= 0.5 * g2.nginx,
      smallRate: smallOurs.rate >= 10_000,
      smallP99: smallOurs.p99Ms < 5,
      put1: w("full-1") >= 0.9 * md5,
      put2: w("full-2") >= 0.8 * twoStreamBase,
      list: listSeconds < 1,
    };
    const mibOf = (kib: number) => `${(kib / KiB).toFixed(0)} MiB`;
    const rows: Row[] = [
      { figure: `GET ${LARGE_BYTES / GiB} GiB, 1 stream (curl, median of ${GET_ROUNDS})`, ours: fmt(g1.ours), baseline: `nginx sendfile ${fmt(g1.nginx)}`, ratio: ratio(g1.ours, g1.nginx), goal: "≥ 0.5 (G4)", met: met.get1 },
      { figure: "… the same against a bare Node `createReadStream` (1 MiB reads) → response server", ours: fmt(g1.ours), baseline: `Node floor ${fmt(g1.floor)}`, ratio: ratio(g1.ours, g1.floor), goal: "", met: undefined },
      { figure: `GET ${LARGE_BYTES / GiB} GiB, 2 parallel streams (aggregate, median of ${GET_ROUNDS})`, ours: fmt(g2.ours), baseline: `nginx sendfile ${fmt(g2.nginx)}`, ratio: ratio(g2.ours, g2.nginx), goal: "≥ 0.5 (G4)", met: met.get2 },
      { figure: `4 KiB GET rate (wrk -t1 -c32, ${WRK_SECONDS} s)`, ours: `${smallOurs.rate.toFixed(0)} req/s`, baseline: `nginx ${smallNginx.rate.toFixed(0)} req/s`, ratio: ratio(smallOurs.rate, smallNginx.rate), goal: "≥ 10,000 req/s (G6)", met: met.smallRate },
      { figure: "… the same against a bare Node `stat` + `readFile` server (no signature, no metadata)", ours: `${smallOurs.rate.toFixed(0)} req/s`, baseline: `Node floor ${smallFloor.rate.toFixed(0)} req/s`, ratio: ratio(smallOurs.rate, smallFloor.rate), goal: "", met: undefined },
      { figure: "4 KiB GET p99 latency at 32 connections", ours: `${smallOurs.p99Ms.toFixed(2)} ms`, baseline: `nginx ${smallNginx.p99Ms.toFixed(2)} ms, Node floor ${smallFloor.p99Ms.toFixed(2)} ms`, ratio: ratio(smallOurs.p99Ms, smallNginx.p99Ms), goal: "< 5 ms (G6)", met: met.smallP99 },
      { figure: `ListObjects of ${LIST_KEYS} keys under a prefix, all pages of 1,000 (median of 3)`, ours: `${(listSeconds * 1000).toFixed(0)} ms`, baseline: "", ratio: "", goal: "< 1 s (G8)", met: met.list },
      { figure: "MD5 on one core (node crypto over 25 MiB buffers, higher of 2 samples)", ours: "", baseline: fmt(md5), ratio: "", goal: "", met: undefined },
      { figure: "durable 25 MiB PUT, 1 stream (`store.put`, durability full)", ours: fmt(w("full-1")), baseline: `MD5 one core ${fmt(md5)}`, ratio: ratio(w("full-1"), md5), goal: "≥ 0.9 (G1)", met: met.put1 },
      { figure: "… the same against the raw write + fdatasync + rename + dir fsync loop, 1 stream", ours: fmt(w("full-1")), baseline: `raw ${fmt(w("raw-1"))}`, ratio: ratio(w("full-1"), w("raw-1")), goal: "", met: undefined },
      { figure: "durable 25 MiB PUT, 2 streams (aggregate)", ours: fmt(w("full-2")), baseline: `min(${cores} × MD5 ${fmt(cores * md5)}, raw 2 streams ${fmt(w("raw-2"))})`, ratio: ratio(w("full-2"), twoStreamBase), goal: "≥ 0.8 (G2)", met: met.put2 },
      { figure: "25 MiB PUT without fsync (durability none), 1 / 2 streams", ours: `${fmt(w("none-1"))} / ${fmt(w("none-2"))}`, baseline: `MD5 ${fmt(md5)} / ${cores} × MD5 ${fmt(cores * md5)}`, ratio: `${ratio(w("none-1"), md5)} / ${ratio(w("none-2"), cores * md5)}`, goal: "", met: undefined },
      { figure: `${HUGE_BYTES / GiB} GiB durable PUT in a child process, 1 stream`, ours: fmt(hugePut), baseline: `MD5 one core ${fmt(md5)}`, ratio: ratio(hugePut, md5), goal: "", met: undefined },
      { figure: "… the child's peak RSS (VmHWM)", ours: mibOf(put.peakRssKiB), baseline: `${mibOf(put.idleRssKiB)} before the PUT`, ratio: "", goal: "flat", met: undefined },
      { figure: "GET of that object from the LVP server (curl)", ours: fmt(hugeGet), baseline: `nginx, 1 GiB above: ${fmt(g1.nginx)}`, ratio: ratio(hugeGet, g1.nginx), goal: "", met: undefined },
      { figure: "… the server's peak RSS (VmRSS every 100 ms)", ours: `${serverPeak.toFixed(0)} MiB`, baseline: `${serverIdle.toFixed(0)} MiB before the GET`, ratio: "", goal: "flat", met: undefined },
    ];

    const notes: string[] = [
      `Client and server share the machine's ${cores} cores: curl or wrk takes one, the LVP server (one Node process) the other, and for writes the event loop, ${cores} MD5 worker threads and the kernel's writeback share the same ${cores}. Loopback figures undercount both servers; the ratios compare like with like. The 1-minute load average was ${loadBefore.toFixed(2)} when the run started${loadBefore >= 1 ? " (other work on the machine, which skews every figure)" : ""}.`,
      `Write rates per pass (GiB/s), to show this VM's noise: ${[...tallies].map(([name, t]) => `${name} ${t.passes.map((r) => r.toFixed(2)).join(" / ")}`).join("; ")}.`,
      `Memory is flat: the PUT child grew by ${mibOf(put.peakRssKiB - put.idleRssKiB)} over a ${HUGE_BYTES / GiB} GiB body (the store stages at most 4 × 1 MiB per upload), and the LVP server by ${(serverPeak - serverIdle).toFixed(0)} MiB while sending it.`,
    ];
    if (!met.get1 || !met.get2) {
      notes.push(
        `GET below 0.5 × nginx: Node's HTTP path has no sendfile, so every byte is read() into one of three reused 1 MiB buffers on a libuv thread and write()n to the socket from the event loop, while nginx hands page-cache pages to the socket. The bare Node server, reading the same file with \`createReadStream\`, reached ${ratio(g1.floor, g1.nginx)} × nginx, ours ${ratio(g1.ours, g1.floor)} × that floor. Single 1 GiB GETs vary by up to 2× between rounds on this VM (see the log), so ratios near 0.5 flip from run to run.`,
      );
    }
    if (!met.smallRate || !met.smallP99) {
      notes.push(
        `4 KiB GET below G6: the LVP server was busy ${serverCores.toFixed(2)} cores (event loop plus libuv threads), i.e. CPU-bound, at ${ratio(smallOurs.rate, smallFloor.rate)} × a bare Node \`stat\` + \`readFile\` server. Per request it checks an HMAC-SHA1 per candidate origin (request Host and the issued host, over http and https) and makes five thread-pool round trips (realpath of the key's folder, open, fstat, read, close) where the floor makes four; on this VM each \`fs/promises\` round trip costs tens of µs of event-loop time (an async realpath 27 µs against 4 µs for the synchronous call)${smallFloor.rate < 10_000 ? ". The bare Node floor itself stayed below 10,000 req/s" : ""}.`,
      );
    }
    if (!met.put1) {
      notes.push(
        `Single-stream durable PUT below 0.9 × MD5. Per GiB the store spent ${cpuPerGiB("full-1").toFixed(2)} CPU-seconds (${mainCpuPerGiB("full-1").toFixed(2)} on the event loop, the rest hashing on a worker and in write and fsync calls on libuv threads; on this VM the write() calls into the page cache alone took between 0.5 and 3 CPU-seconds of kernel time per GiB in separate runs) against ${(1 / md5).toFixed(2)} for MD5 alone, so one stream at 0.9 × MD5 keeps ${(cpuPerGiB("full-1") * 0.9 * md5).toFixed(1)} cores busy and its hash worker has to share a core. Without fsync it reached ${fmt(w("none-1"))} (${ratio(w("none-1"), md5)} × MD5). Background fdatasyncs every 8 MiB overlap the disk with hashing, but the last one, the metadata record, the rename and the directory fsyncs still come after the last byte is hashed, and the raw loop alone managed ${fmt(w("raw-1"))} single-stream${w("raw-1") < 0.9 * md5 ? ", itself below 0.9 × MD5 on this disk" : ""}.`,
      );
    }
    if (!met.put2) {
      notes.push(
        `Two-stream durable PUT below G2: the goal counts only hashing (${cores} × MD5), but the store spends ${cpuPerGiB("full-2").toFixed(2)} CPU-seconds per GiB with 2 streams (${mainCpuPerGiB("full-2").toFixed(2)} on the event loop) against ${(1 / md5).toFixed(2)} for MD5 alone, so the goal's ${fmt(0.8 * twoStreamBase)} would take ${(0.8 * twoStreamBase * cpuPerGiB("full-2")).toFixed(1)} cores; this machine has ${cores}. Without fsync 2 streams reach ${fmt(w("none-2"))}.`,
      );
    }
    return renderSection(
      "## Object store (storage)",
      [
        `Run ${new Date().toISOString().slice(0, 16)}Z on ${machine()}, in ${(seconds(began) / 60).toFixed(1)} min. Command: \`make bench-storage\` (also part of \`make bench\`; \`test/bench/storage.ts\`). Goals: G1, G2, G4 and G6 of the storage design's reference figures (s3.md §11.3).`,
        `Files live in a temp dir under ${os.tmpdir()}, on the same disk for every figure. GETs: a ${LARGE_BYTES / GiB} GiB random object written through the store, fetched with \`curl -o /dev/null\` from our LVP file server with a signed URL (\`storage --lvp-listen\`, read-only), from nginx ${nginxVersion()} (Debian, \`sendfile on\`, one process) serving the very same file, and from a bare Node server (\`test/bench/storageFloor.ts\`: \`createReadStream\` for large files, \`stat\` + \`readFile\` for small ones); 4 KiB GETs by wrk with keep-alive against all three. Writes: 25 MiB bodies from memory in 64 KiB chunks through \`ObjectStore.put\` in this process (hash pool of ${cores} workers), against a loop of 25 × 1 MiB writes + fdatasync + rename + directory fsync; about ${(WRITE_BYTES / GiB).toFixed(0)} GiB per configuration in two interleaved passes, with the objects deleted and \`sync\` run between configurations. The ${HUGE_BYTES / GiB} GiB object is above S3's 5 GiB single-PUT limit; the child raises the store's limit for it.`,
      ],
      rows,
      notes,
    );
  } finally {
    await store.close();
    await noSync.close();
    await pool.close();
  }
}

await runBench({ section: "storage", dir, children, scale: SCALE, began, log, main });
