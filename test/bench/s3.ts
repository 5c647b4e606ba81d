// `make bench` part 3 (alone: `make bench-s3`): the S3 API (`storage --s3-listen`, a child process)
// against nginx (sendfile GET, WebDAV PUT), the store's own write path without HTTP, the raw disk
// and the single-core hash rates, every baseline measured in the same run on the same disk.
// Goals: G1–G4, G6 and G8 of s3.md §11.3. Everything lives in one temp dir.
import { randomBytes, randomFillSync } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HashPool } from "../../src/storage/hashPool.js";
import { ObjectStore } from "../../src/storage/store.js";
import { freePort, type Child } from "../cluster/processes.js";
import { presignTarget, signRequest } from "../s3/signer.js";
import { gibps, hashRate, heyRun, runBench, nginxVersion, rawDurableWrite, seconds, startNginx, syncDisk, wrkPutScript, wrkRun, type BenchDir, type WrkResult } from "./benchServers.js";
import { machine, ratio, renderSection, type Row } from "./report.js";
import { BUCKET, buildPut, closeAgent, curlGets, describe, expectStatus, freshAgent, listAll, multipartUpload, payload, planParts, s3Delete, s3Put, startS3, MODE_NAMES, type MultipartPhases, type PutMode, type S3Server } from "./s3Client.js";
import { cpuSeconds, repeatedBody } from "./storageHelpers.js";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** BENCH_STORAGE_SCALE=0.05 shrinks every transfer (and the wrk runs) for a quick smoke run of the script itself. */
const SCALE = Number(process.env.BENCH_STORAGE_SCALE ?? 1);
const mib = (bytes: number) => Math.max(MiB, Math.round((bytes * SCALE) / MiB) * MiB);
/** kopia's pack blobs are 20–28 MiB, each one PUT. */
const OBJECT_BYTES = 25 * MiB;
/** 25 MiB objects per configuration and pass (16: 400 MiB). */
const OBJECTS_PER_PASS = Math.max(2, Math.round(16 * SCALE));
/** The multipart upload and the large GET (1 GiB: 205 parts of 5 MiB, the last one 4 MiB). */
const LARGE_BYTES = mib(GiB);
const PART_BYTES = 5 * MiB;
/** Velero's uploader (the AWS SDK's s3 manager) sends up to 5 parts at once. */
const PART_CONCURRENCY = 5;
/** Seconds spent in the last multipart uploads' phases, by mode. */
const mpuPhases = new Map<string, MultipartPhases[]>();
const SMALL_BYTES = 4 * KiB;
const LIST_KEYS = Math.max(100, Math.round(10_000 * SCALE));
const WRK_SECONDS = Number(process.env.BENCH_SECONDS ?? (SCALE < 1 ? 1 : 5));
/** Rounds of every figure; each figure's value is the median. */
const ROUNDS = 3;
/** 25 MiB GETs per round, over one keep-alive connection. */
const SMALL_GETS = 8;
/** Distinct keys the 4 KiB PUT loops cycle through. */
const PUT_KEYS = 1000;

const log = (line: string) => console.log(`[bench:s3] ${line}`);
/** The 1-minute load average, logged at the start of each figure: other work on the machine skews figures. */
const load = () => `(load ${os.loadavg()[0]!.toFixed(2)})`;
const began = performance.now();
const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-s3-bench-"));
const cores = os.availableParallelism();
const children: Child[] = [];
const bench: BenchDir = { dir, children };

const fmt = (rate: number) => `${rate.toFixed(2)} GiB/s`;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const req = (rate: number) => `${rate.toFixed(0)} req/s`;
const ms = (value: number) => `${value.toFixed(2)} ms`;


// --- timed write loops -------------------------------------------------------------------------

interface Tally {
  /** GiB/s of each pass. */
  passes: number[];
  bytes: number;
  /** CPU seconds of the server child (HTTP configurations) and of this process. */
  serverCpu: number;
  clientCpu: number;
}

const tallies = new Map<string, Tally>();
const tally = (name: string) => tallies.get(name) ?? tallies.set(name, { passes: [], bytes: 0, serverCpu: 0, clientCpu: 0 }).get(name)!;
const rate = (name: string) => median(tally(name).passes);

/** `streams` concurrent loops of `perStream` writes of `bytesEach`, timed; adds a pass to the tally. */
async function timedPass(name: string, streams: number, perStream: number, bytesEach: number, serverPid: number | undefined, write: (stream: number, index: number) => Promise<void>): Promise<number> {
  const t = tally(name);
  const server0 = serverPid ? cpuSeconds(serverPid) : 0;
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async (_, stream) => {
      for (let i = 0; i < perStream; i++) await write(stream, i);
    }),
  );
  const elapsed = seconds(t0);
  const client = process.cpuUsage(client0);
  t.clientCpu += (client.user + client.system) / 1e6;
  if (serverPid) t.serverCpu += cpuSeconds(serverPid) - server0;
  t.bytes += streams * perStream * bytesEach;
  const r = gibps(streams * perStream * bytesEach, elapsed);
  t.passes.push(r);
  return r;
}

// --- wrk ---------------------------------------------------------------------------------------

interface WrkFigure {
  runs: WrkResult[];
  serverCores: number[];
}

// --- the run -----------------------------------------------------------------------------------

async function main(): Promise<string> {
  const loadBefore = os.loadavg()[0]!;
  log(`temp dir ${dir}; ${cores} cores; 1-minute load average ${loadBefore.toFixed(2)}; scale ${SCALE}`);
  const s3Root = path.join(dir, "s3");
  const pool = new HashPool();
  const localRoot = path.join(dir, "local");
  mkdirSync(localRoot);
  const store = await ObjectStore.open(localRoot, { durability: "full", hashPool: pool });
  await store.createBucket(BUCKET);
  let reader: ObjectStore | undefined;
  try {
    const ours = await startS3(bench, "s3-server", s3Root, "full");
    const noSync = await startS3(bench, "s3-server-nosync", path.join(dir, "s3-nosync"), "none");
    const nginxPort = await freePort();
    const nginxBase = `http://127.0.0.1:${nginxPort}`;
    // WebDAV PUT under /dav/ into <dir>/dav (temp file in <dir>/nginx/client_body, then rename; no fsync).
    await startNginx(bench, nginxPort, s3Root, [`location /dav/ { root ${dir}; dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 0; }`]);
    const davDir = path.join(dir, "dav");
    const ourPid = ours.child.process.pid!;
    const noSyncPid = noSync.child.process.pid!;

    // --- 1. 25 MiB single PUTs ---
    const payloads = [payload(randomBytes(OBJECT_BYTES)), payload(randomBytes(OBJECT_BYTES))];
    const md5 = [hashRate(payloads[0]!.body, ["md5"])];
    const md5Sha = [hashRate(payloads[0]!.body, ["md5", "sha256"])];
    log(`one core: MD5 ${fmt(md5[0]!)}, MD5 + SHA-256 serially ${fmt(md5Sha[0]!)}`);
    // The request shapes are accepted before anything is timed (a wrong signature would fail every request).
    for (const mode of ["unsigned", "chunked", "sha256"] as const) {
      await s3Put(ours, mode, `check/${mode}`, payloads[0]!);
      await s3Delete(ours, `check/${mode}`);
    }
    const rawTemp = path.join(dir, "raw-tmp");
    const rawDir = path.join(dir, "raw");
    mkdirSync(rawTemp);
    mkdirSync(rawDir);
    const perPass = (streams: number) => Math.ceil(OBJECTS_PER_PASS / streams);
    const httpConfigs: Array<{ name: string; server: S3Server; mode: PutMode }> = [
      { name: "unsigned", server: ours, mode: "unsigned" },
      { name: "chunked", server: ours, mode: "chunked" },
      { name: "sha256", server: ours, mode: "sha256" },
      { name: "unsigned-nosync", server: noSync, mode: "unsigned" },
    ];
    log(`25 MiB PUTs: ${ROUNDS} passes of ${OBJECTS_PER_PASS} objects per configuration, 1 and 2 streams; requests signed before each timed pass ${load()}`);
    for (let pass = 0; pass < ROUNDS; pass++) {
      freshAgent();
      for (const streams of [1, 2]) {
        const n = perPass(streams);
        const results: string[] = [];
        const settle = async (cleanup: () => Promise<void>) => {
          await cleanup();
          syncDisk();
        };
        // raw disk: write + fdatasync + rename + directory fsync
        let r = await timedPass(`raw-${streams}`, streams, n, OBJECT_BYTES, undefined, (s, i) => rawDurableWrite(payloads[s]!.body, rawTemp, rawDir, `${pass}-${s}-${i}`));
        results.push(`raw ${fmt(r)}`);
        await settle(async () => {
          await rm(rawDir, { recursive: true });
          mkdirSync(rawDir);
        });
        // the store in this process, no HTTP: MD5 (checked against Content-MD5), then MD5 + SHA-256
        for (const [name, digests] of [["store-md5", []], ["store-md5-sha256", ["sha256"]]] as const) {
          const keys: string[] = [];
          r = await timedPass(`${name}-${streams}`, streams, n, OBJECT_BYTES, undefined, async (s, i) => {
            const key = `w/${name}/${pass}-${s}-${i}`;
            keys.push(key);
            await store.put(BUCKET, key, repeatedBody(payloads[s]!.body, OBJECT_BYTES), { expectedMd5: Buffer.from(payloads[s]!.md5Base64, "base64"), digests: [...digests] });
          });
          results.push(`${name} ${fmt(r)}`);
          await settle(async () => {
            for (const key of keys) await store.delete(BUCKET, key);
          });
        }
        // nginx WebDAV PUT of the same body with the same client
        r = await timedPass(`dav-${streams}`, streams, n, OBJECT_BYTES, undefined, async (s, i) => {
          await expectStatus(nginxPort, { method: "PUT", target: `/dav/w/${pass}-${s}-${i}`, headers: { host: `127.0.0.1:${nginxPort}`, "content-length": String(OBJECT_BYTES) }, body: payloads[s]!.body }, [201, 204], "nginx DAV PUT");
        });
        results.push(`nginx DAV ${fmt(r)}`);
        await settle(() => rm(davDir, { recursive: true, force: true }));
        // ours, over HTTP
        for (const config of httpConfigs) {
          const keyOf = (s: number, i: number) => `w/${config.name}/${pass}-${s}-${i}`;
          const requests = await Promise.all(Array.from({ length: streams }, (_, s) => Promise.all(Array.from({ length: n }, (__, i) => buildPut(config.mode, config.server.host, keyOf(s, i), payloads[s]!)))));
          const pid = config.server === ours ? ourPid : noSyncPid;
          r = await timedPass(`${config.name}-${streams}`, streams, n, OBJECT_BYTES, pid, async (s, i) => {
            const request = requests[s]![i]!;
            const reply = await expectStatus(config.server.port, request, [200], `${config.server.name}: PutObject (${config.mode})`);
            if (reply.headers.etag !== `"${payloads[s]!.md5Hex}"`) throw new Error(`PutObject answered ETag ${reply.headers.etag}:\n${describe(request, reply)}`);
          });
          results.push(`${config.name} ${fmt(r)}`);
          await settle(async () => {
            for (let s = 0; s < streams; s++) for (let i = 0; i < n; i++) await s3Delete(config.server, keyOf(s, i));
          });
        }
        log(`  pass ${pass + 1}, ${streams} stream${streams > 1 ? "s" : ""}: ${results.join(", ")}`);
      }
    }
    md5.push(hashRate(payloads[1]!.body, ["md5"]));
    md5Sha.push(hashRate(payloads[1]!.body, ["md5", "sha256"]));
    const md5Best = Math.max(...md5);
    const md5ShaBest = Math.max(...md5Sha);
    log(`one core again: MD5 ${fmt(md5[1]!)}, MD5 + SHA-256 ${fmt(md5Sha[1]!)}; using the higher of each`);

    // --- 2. multipart upload of 1 GiB ---
    freshAgent();
    const data = randomFillSync(Buffer.allocUnsafe(LARGE_BYTES));
    const plan = planParts(data, PART_BYTES);
    const LARGE_KEY = "large/object.bin";
    log(`multipart ${LARGE_BYTES / MiB} MiB in ${plan.parts.length} parts of 5 MiB, ${PART_CONCURRENCY} at a time (end to end, Complete included), against nginx DAV PUT and store.put of the same bytes; ${ROUNDS} rounds ${load()}`);
    for (let round = 0; round < ROUNDS; round++) {
      const results: string[] = [];
      let r = await timedPass("mpu-dav", 1, 1, LARGE_BYTES, undefined, async () => {
        await expectStatus(nginxPort, { method: "PUT", target: `/dav/large/${round}`, headers: { host: `127.0.0.1:${nginxPort}`, "content-length": String(LARGE_BYTES) }, body: data }, [201, 204], "nginx DAV PUT");
      });
      results.push(`nginx DAV ${fmt(r)}`);
      await rm(davDir, { recursive: true, force: true });
      syncDisk();
      r = await timedPass("mpu-store", 1, 1, LARGE_BYTES, undefined, async () => {
        await store.put(BUCKET, `large/${round}`, repeatedBody(data, LARGE_BYTES));
      });
      results.push(`store.put ${fmt(r)}`);
      await store.delete(BUCKET, `large/${round}`);
      syncDisk();
      for (const mode of ["sha256", "unsigned"] as const) {
        const key = round === ROUNDS - 1 && mode === "unsigned" ? LARGE_KEY : `mpu/${mode}-${round}`;
        r = await timedPass(`mpu-${mode}`, 1, 1, LARGE_BYTES, ourPid, async () => {
          const phases = await multipartUpload(ours, key, plan, mode, PART_CONCURRENCY);
          (mpuPhases.get(mode) ?? mpuPhases.set(mode, []).get(mode)!).push(phases);
        });
        const phase = mpuPhases.get(mode)!.at(-1)!;
        results.push(`multipart ${mode} ${fmt(r)} (parts ${phase.parts.toFixed(1)} s, Complete ${phase.complete.toFixed(1)} s)`);
        if (key !== LARGE_KEY) await s3Delete(ours, key);
        syncDisk();
      }
      log(`  round ${round + 1}: ${results.join(", ")}`);
    }

    // --- 3. GETs of 25 MiB and 1 GiB (header-signed), against nginx sendfile of the same file ---
    freshAgent();
    const OBJECT_KEY = "get/object-25mib.bin";
    await s3Put(ours, "unsigned", OBJECT_KEY, payloads[0]!);
    const getFigures = [
      { name: "get-25", key: OBJECT_KEY, bytes: OBJECT_BYTES, count: SMALL_GETS },
      { name: "get-large", key: LARGE_KEY, bytes: LARGE_BYTES, count: 1 },
    ];
    const gets = new Map<string, { ours: number[]; nginx: number[] }>();
    log(`GET: curl -o /dev/null, 25 MiB × ${SMALL_GETS} per round over one connection and ${LARGE_BYTES / MiB} MiB × 1; warm-up, then ${ROUNDS} rounds alternating nginx and ours ${load()}`);
    for (let round = -1; round < ROUNDS; round++) {
      for (const figure of getFigures) {
        // Header auth, signed per round (the signature holds for 15 minutes).
        const signed = await signRequest({ method: "GET", target: `/${BUCKET}/${figure.key}`, headers: {} }, ours.host);
        const nginxRate = await curlGets(`${nginxBase}/${BUCKET}/${figure.key}`, {}, figure.count, figure.bytes);
        const ourRate = await curlGets(`http://${ours.host}/${BUCKET}/${figure.key}`, signed.headers, figure.count, figure.bytes);
        if (round < 0) continue;
        const g = gets.get(figure.name) ?? gets.set(figure.name, { ours: [], nginx: [] }).get(figure.name)!;
        g.ours.push(ourRate);
        g.nginx.push(nginxRate);
        log(`  round ${round + 1}, ${figure.bytes / MiB} MiB: ours ${fmt(ourRate)} vs nginx ${fmt(nginxRate)}`);
      }
    }

    // --- 4. 4 KiB PUT / GET / HEAD rates with wrk and presigned URLs ---
    freshAgent();
    const SMALL_KEY = "small/4kib.bin";
    const small = payload(randomBytes(SMALL_BYTES));
    await s3Put(ours, "unsigned", SMALL_KEY, small);
    const bodyFile = path.join(dir, "body-4kib");
    writeFileSync(bodyFile, small.body);
    const presigned = async (method: string, key: string) => `http://${ours.host}${await presignTarget(method, `/${BUCKET}/${key}`, ours.host, { expiresIn: 3600 })}`;
    const putPaths = await Promise.all(Array.from({ length: PUT_KEYS }, (_, i) => presignTarget("PUT", `/${BUCKET}/smallput/k${String(i).padStart(4, "0")}`, ours.host, { expiresIn: 3600 })));
    const putScript = (name: string, paths: string[]) => wrkPutScript(path.join(dir, name), paths);
    const putScripts = { ours: putScript("put-ours.lua", putPaths), nginx: putScript("put-nginx.lua", Array.from({ length: PUT_KEYS }, (_, i) => `/dav/small/k${String(i).padStart(4, "0")}`)) };
    // wrk cannot measure HEAD (its parser waits for the body the response's Content-Length announces): hey does HEAD.
    const loadTargets = {
      get: { ours: await presigned("GET", SMALL_KEY), nginx: `${nginxBase}/${BUCKET}/${SMALL_KEY}`, run: (url: string, secs: number) => wrkRun(url, secs) },
      head: { ours: await presigned("HEAD", SMALL_KEY), nginx: `${nginxBase}/${BUCKET}/${SMALL_KEY}`, run: (url: string, secs: number) => heyRun(url, secs, "HEAD") },
      put: {
        ours: `http://${ours.host}/`,
        nginx: `${nginxBase}/`,
        run: (url: string, secs: number) => wrkRun(url, secs, { script: url.startsWith(nginxBase) ? putScripts.nginx : putScripts.ours, env: { BODY: bodyFile } }),
      },
    };
    // Each presigned request once through node:http first: a refusal is reported with the exact exchange.
    await expectStatus(ours.port, { method: "GET", target: loadTargets.get.ours.slice(`http://${ours.host}`.length), headers: { host: ours.host } }, [200], "presigned GET");
    await expectStatus(ours.port, { method: "HEAD", target: loadTargets.head.ours.slice(`http://${ours.host}`.length), headers: { host: ours.host } }, [200], "presigned HEAD");
    await expectStatus(ours.port, { method: "PUT", target: putPaths[0]!, headers: { host: ours.host, "content-length": String(SMALL_BYTES) }, body: small.body }, [200], "presigned PUT");
    const wrkResults = new Map<string, WrkFigure>();
    const wrkOf = (name: string) => wrkResults.get(name) ?? wrkResults.set(name, { runs: [], serverCores: [] }).get(name)!;
    log(`4 KiB GET, HEAD, PUT at 32 connections, 1 s warm-up then ${WRK_SECONDS} s, ${ROUNDS} rounds alternating nginx and ours (presigned URLs; GET and PUT: wrk -t1 --latency, PUTs cycling through ${PUT_KEYS} keys; HEAD: hey with GOMAXPROCS=1) ${load()}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [op, target] of Object.entries(loadTargets)) {
        for (const who of ["nginx", "ours"] as const) {
          const url = target[who];
          if (round === 0) target.run(url, 1);
          const cpu0 = who === "ours" ? cpuSeconds(ourPid) : 0;
          const t0 = performance.now();
          const result = target.run(url, WRK_SECONDS);
          if (!(result.rate > 0)) throw new Error(`${op.toUpperCase()} ${url.split("?")[0]}: no request completed in ${WRK_SECONDS} s`);
          const figure = wrkOf(`${op}-${who}`);
          figure.runs.push(result);
          if (who === "ours") figure.serverCores.push((cpuSeconds(ourPid) - cpu0) / seconds(t0));
        }
        const [n, o] = [wrkOf(`${op}-nginx`).runs.at(-1)!, wrkOf(`${op}-ours`).runs.at(-1)!];
        log(`  round ${round + 1}, ${op.toUpperCase()}: ours ${req(o.rate)} p99 ${ms(o.p99Ms)} (server busy ${wrkOf(`${op}-ours`).serverCores.at(-1)!.toFixed(2)} cores) vs nginx ${req(n.rate)} p99 ${ms(n.p99Ms)}`);
      }
    }

    // --- 5. ListObjectsV2 of 10k keys ---
    freshAgent();
    let t0 = performance.now();
    const listKeys = Array.from({ length: LIST_KEYS }, () => `list/p${randomBytes(16).toString("hex")}`);
    const tiny = payload(randomBytes(64));
    for (let i = 0; i < listKeys.length; i += 32) {
      await Promise.all(listKeys.slice(i, i + 32).map(async (key) => expectStatus(ours.port, await buildPut("unsigned", ours.host, key, tiny), [200], "PutObject (listing fixture)")));
    }
    log(`wrote ${LIST_KEYS} objects under list/ through the API (32 at a time) in ${seconds(t0).toFixed(1)} s ${load()}`);
    reader = await ObjectStore.open(s3Root, { readOnly: true });
    const listRuns: number[] = [];
    const storeListRuns: number[] = [];
    for (let round = -1; round < ROUNDS; round++) {
      t0 = performance.now();
      const listed = await listAll(ours, "list/");
      const apiSeconds = seconds(t0);
      if (listed !== LIST_KEYS) throw new Error(`ListObjectsV2 returned ${listed} keys, expected ${LIST_KEYS}`);
      t0 = performance.now();
      let inProcess = 0;
      let token: string | undefined;
      do {
        const page = await reader.list(BUCKET, { prefix: "list/", delimiter: "/", ...(token ? { continuationToken: token } : {}) });
        inProcess += page.objects.length;
        token = page.nextContinuationToken;
      } while (token);
      const storeSeconds = seconds(t0);
      if (inProcess !== LIST_KEYS) throw new Error(`store.list returned ${inProcess} keys, expected ${LIST_KEYS}`);
      if (round < 0) continue;
      listRuns.push(apiSeconds);
      storeListRuns.push(storeSeconds);
      log(`  round ${round + 1}: ListObjectsV2 ${(apiSeconds * 1000).toFixed(0)} ms (${Math.ceil(LIST_KEYS / 1000)} pages), store.list in this process ${(storeSeconds * 1000).toFixed(0)} ms`);
    }

    // --- report ---
    const w = (name: string) => rate(name);
    const g = (name: string) => ({ ours: median(gets.get(name)!.ours), nginx: median(gets.get(name)!.nginx) });
    const wk = (name: string) => {
      const f = wrkOf(name);
      return { rate: median(f.runs.map((r) => r.rate)), p99: median(f.runs.map((r) => r.p99Ms)), cores: f.serverCores.length > 0 ? median(f.serverCores) : NaN };
    };
    const listMs = median(listRuns) * 1000;
    const storeListMs = median(storeListRuns) * 1000;
    const rows: Row[] = [];
    const hashOf = (mode: PutMode) => (mode === "unsigned" ? { rate: md5Best, name: "MD5" } : { rate: md5ShaBest, name: "MD5 + SHA-256" });
    const met: Record<string, boolean> = {};
    for (const mode of ["unsigned", "chunked", "sha256"] as const) {
      const hash = hashOf(mode);
      const single = w(`${mode}-1`);
      const double = w(`${mode}-2`);
      const goal1 = mode === "unsigned" ? 0.9 : 0.8;
      const base2 = Math.min(cores * hash.rate, w("raw-2"));
      const storeName = mode === "unsigned" ? "store-md5" : "store-md5-sha256";
      met[`${mode}-1`] = single >= goal1 * hash.rate;
      met[`${mode}-2`] = double >= 0.8 * base2;
      rows.push(
        { figure: `25 MiB PUT, ${MODE_NAMES[mode]}, 1 stream`, ours: fmt(single), baseline: `${hash.name} one core ${fmt(hash.rate)}`, ratio: ratio(single, hash.rate), goal: `≥ ${goal1} (${mode === "unsigned" ? "G1" : "G3"})`, met: met[`${mode}-1`] },
        { figure: "… against `store.put` in-process (same hashes, no HTTP) / nginx DAV PUT", ours: fmt(single), baseline: `store ${fmt(w(`${storeName}-1`))} / nginx ${fmt(w("dav-1"))}`, ratio: `${ratio(single, w(`${storeName}-1`))} / ${ratio(single, w("dav-1"))}`, goal: "", met: undefined },
        { figure: `25 MiB PUT, ${MODE_NAMES[mode]}, 2 streams (aggregate)`, ours: fmt(double), baseline: `min(${cores} × ${hash.name} ${fmt(cores * hash.rate)}, raw disk 2 streams ${fmt(w("raw-2"))})`, ratio: ratio(double, base2), goal: "≥ 0.8 (G2)", met: met[`${mode}-2`] },
        { figure: "… against `store.put` in-process / nginx DAV PUT, 2 streams", ours: fmt(double), baseline: `store ${fmt(w(`${storeName}-2`))} / nginx ${fmt(w("dav-2"))}`, ratio: `${ratio(double, w(`${storeName}-2`))} / ${ratio(double, w("dav-2"))}`, goal: "", met: undefined },
      );
    }
    rows.push({
      figure: "25 MiB PUT, UNSIGNED-PAYLOAD + Content-MD5, `--durability none` (no fsync, still MD5), 1 / 2 streams",
      ours: `${fmt(w("unsigned-nosync-1"))} / ${fmt(w("unsigned-nosync-2"))}`,
      baseline: `nginx DAV PUT (no fsync, no hash) ${fmt(w("dav-1"))} / ${fmt(w("dav-2"))}`,
      ratio: `${ratio(w("unsigned-nosync-1"), w("dav-1"))} / ${ratio(w("unsigned-nosync-2"), w("dav-2"))}`,
      goal: "",
      met: undefined,
    });
    for (const mode of ["sha256", "unsigned"] as const) {
      rows.push({
        figure: `multipart ${LARGE_BYTES / MiB} MiB: ${plan.parts.length} × 5 MiB UploadPart (${mode === "sha256" ? "hex SHA-256" : "UNSIGNED-PAYLOAD"}), ${PART_CONCURRENCY} parallel, Create to Complete`,
        ours: fmt(w(`mpu-${mode}`)),
        baseline: `nginx DAV PUT ${fmt(w("mpu-dav"))} / \`store.put\` ${fmt(w("mpu-store"))}`,
        ratio: `${ratio(w(`mpu-${mode}`), w("mpu-dav"))} / ${ratio(w(`mpu-${mode}`), w("mpu-store"))}`,
        goal: "",
        met: undefined,
      });
    }
    for (const [name, label] of [["get-25", `GET 25 MiB (curl, ${SMALL_GETS} in a row on one connection)`], ["get-large", `GET ${LARGE_BYTES / MiB} MiB (curl)`]] as const) {
      const x = g(name);
      met[name] = x.ours >= 0.5 * x.nginx;
      rows.push({ figure: `${label}, header-signed`, ours: fmt(x.ours), baseline: `nginx sendfile ${fmt(x.nginx)}`, ratio: ratio(x.ours, x.nginx), goal: "≥ 0.5 (G4)", met: met[name] });
    }
    for (const op of ["get", "head", "put"] as const) {
      const o = wk(`${op}-ours`);
      const n = wk(`${op}-nginx`);
      const goal = op !== "put";
      if (goal) {
        met[`${op}-rate`] = o.rate >= 10_000;
        met[`${op}-p99`] = o.p99 < 5;
      }
      const nginxName = op === "put" ? "nginx DAV PUT (no fsync)" : `nginx ${op.toUpperCase()}`;
      rows.push(
        { figure: `4 KiB ${op.toUpperCase()} rate, presigned (${op === "head" ? "hey, GOMAXPROCS=1" : "wrk -t1"}, 32 connections, ${WRK_SECONDS} s)${op === "put" ? ", durable" : ""}`, ours: `${req(o.rate)} (${req(o.rate / o.cores)} per busy server core)`, baseline: `${nginxName} ${req(n.rate)}`, ratio: ratio(o.rate, n.rate), goal: goal ? "≥ 10,000 req/s (G6)" : "", met: goal ? met[`${op}-rate`] : undefined },
        { figure: `4 KiB ${op.toUpperCase()} p99 latency at 32 connections`, ours: ms(o.p99), baseline: `${nginxName} ${ms(n.p99)}`, ratio: ratio(o.p99, n.p99), goal: goal ? "< 5 ms (G6)" : "", met: goal ? met[`${op}-p99`] : undefined },
      );
    }
    met.list = listMs < 1000;
    rows.push({
      figure: `ListObjectsV2 of ${LIST_KEYS} keys, all ${Math.ceil(LIST_KEYS / 1000)} pages of 1,000 (kopia's query, header-signed)`,
      ours: `${listMs.toFixed(0)} ms`,
      baseline: `\`store.list\` in-process ${storeListMs.toFixed(0)} ms`,
      ratio: ratio(listMs, storeListMs),
      goal: "< 1 s (G8)",
      met: met.list,
    });
    rows.push({ figure: "hash rates on one core (node crypto over 25 MiB, higher of 2 samples)", ours: "", baseline: `MD5 ${fmt(md5Best)}; MD5 + SHA-256 serially ${fmt(md5ShaBest)}`, ratio: "", goal: "", met: undefined });
    rows.push({ figure: "raw disk: write + fdatasync + rename + dir fsync, 25 MiB, 1 / 2 streams", ours: "", baseline: `${fmt(w("raw-1"))} / ${fmt(w("raw-2"))}`, ratio: "", goal: "", met: undefined });

    const mpuPhase = (mode: string, phase: "parts" | "complete") => median(mpuPhases.get(mode)!.map((p) => p[phase])).toFixed(1);
    const cpuPerGiB = (name: string, which: "serverCpu" | "clientCpu") => tally(name)[which] / (tally(name).bytes / GiB);
    const passes = (names: string[]) => names.map((name) => `${name} ${tally(name).passes.map((r) => r.toFixed(2)).join(" / ")}`).join("; ");
    const notes = [
      `Client and server share the machine's ${cores} cores. The client sends pre-built bodies (one Buffer, or for aws-chunked the payload's 64 KiB slices and the framing lines, written in one corked batch) over a node:http keep-alive agent; every request of a timed pass is built and signed (smithy's SigV4 signer, \`test/s3/signer.ts\`, which hashes each aws-chunked chunk) before the pass starts, so the timings hold no client hashing — a real kopia spends ${(1 / md5Best).toFixed(1)}–${(1 / md5ShaBest).toFixed(1)} CPU-seconds per GiB on MD5 (+ SHA-256) on the same cores. The 1-minute load average was ${loadBefore.toFixed(2)} when the run started and ${os.loadavg()[0]!.toFixed(2)} when it ended${Math.max(loadBefore, os.loadavg()[0]!) >= 1 ? " (other work on the machine, which skews every figure; see the pass rates below)" : ""}.`,
      `Goals: 1 stream ≥ 0.9 × one core's MD5 rate for UNSIGNED-PAYLOAD (G1) and ≥ 0.8 × one core's MD5 + SHA-256 rate for the two modes that hash both (G3); 2 streams ≥ 0.8 × min(${cores} cores × that hash rate, the raw disk's 2-stream write + fdatasync + rename rate) (G2). Each rate is the median of ${ROUNDS} passes of ${OBJECTS_PER_PASS} objects; the objects are deleted and \`sync\` run after every configuration. \`store.put\` is \`ObjectStore.put\` in this process (durability full, its own hash pool of ${cores} workers, 64 KiB chunks) with Content-MD5 checked, plus SHA-256 for the comparison with the two SHA-256 modes. nginx ${nginxVersion()} DAV PUT writes a temp file and renames it, without fsync or hashing.`,
      `Server CPU-seconds per GiB (1 / 2 streams): UNSIGNED-PAYLOAD ${cpuPerGiB("unsigned-1", "serverCpu").toFixed(2)} / ${cpuPerGiB("unsigned-2", "serverCpu").toFixed(2)}, aws-chunked ${cpuPerGiB("chunked-1", "serverCpu").toFixed(2)} / ${cpuPerGiB("chunked-2", "serverCpu").toFixed(2)}, hex SHA-256 ${cpuPerGiB("sha256-1", "serverCpu").toFixed(2)} / ${cpuPerGiB("sha256-2", "serverCpu").toFixed(2)}; no fsync ${cpuPerGiB("unsigned-nosync-1", "serverCpu").toFixed(2)} / ${cpuPerGiB("unsigned-nosync-2", "serverCpu").toFixed(2)}; in-process \`store.put\` (MD5) ${cpuPerGiB("store-md5-1", "clientCpu").toFixed(2)} / ${cpuPerGiB("store-md5-2", "clientCpu").toFixed(2)}; the client while sending ${cpuPerGiB("unsigned-1", "clientCpu").toFixed(2)} (UNSIGNED-PAYLOAD, 1 stream).`,
      `Multipart: one ${LARGE_BYTES / MiB} MiB random buffer; the parts' SHA-256 are computed once before timing, each part is signed as it is sent; time runs from CreateMultipartUpload to the CompleteMultipartUpload answer, which copies the parts into the object (read and rewritten without hashing, then fsynced). Baselines send the same buffer as one nginx DAV PUT and one \`store.put\` (MD5, 1 stream). Of the multipart time (medians), Create + parts took ${mpuPhase("sha256", "parts")} / ${mpuPhase("unsigned", "parts")} s and Complete ${mpuPhase("sha256", "complete")} / ${mpuPhase("unsigned", "complete")} s (hex SHA-256 / UNSIGNED-PAYLOAD). Median of ${ROUNDS} rounds; the multipart server spent ${cpuPerGiB("mpu-sha256", "serverCpu").toFixed(2)} (hex SHA-256) / ${cpuPerGiB("mpu-unsigned", "serverCpu").toFixed(2)} (UNSIGNED-PAYLOAD) CPU-seconds per GiB.`,
      `GETs: \`curl -o /dev/null\` with SigV4 header auth (minio-go's GET: \`x-amz-content-sha256\` = SHA-256 of the empty body), against nginx sendfile serving the very same file (the store's layout is \`<root>/<bucket>/<key>\`); warm page cache; the ${LARGE_BYTES / MiB} MiB object is the last multipart upload. 4 KiB figures: presigned URLs (1 h expiry) at 32 connections; GET and PUT with \`wrk -t1 --latency\` (PUT through a Lua script cycling through ${PUT_KEYS} keys with a 4 KiB body, durable), HEAD with hey limited to one core (\`GOMAXPROCS=1\`) because wrk's parser waits for the body a HEAD response's Content-Length announces; the server's busy cores are its CPU time over the run's wall time. Listing: ${LIST_KEYS} objects written through the API, then \`GET /${BUCKET}/?list-type=2&encoding-type=url&prefix=list%2F&delimiter=%2F&fetch-owner=true&max-keys=1000\` page by page with continuation tokens; the baseline is \`ObjectStore.list\` over the same root in this process (no HTTP, no XML). Median of ${ROUNDS} rounds after a warm-up.`,
      `Pass rates (GiB/s), to show the noise: ${passes(["raw-1", "raw-2", "store-md5-1", "store-md5-2", "dav-1", "dav-2", "unsigned-1", "unsigned-2", "chunked-1", "chunked-2", "sha256-1", "sha256-2", "mpu-sha256", "mpu-unsigned"])}.`,
    ];
    const slowNginx = ["get-25", "get-large"].filter((name) => g(name).ours > g(name).nginx);
    if (slowNginx.length > 0) {
      notes.push(
        `nginx sendfile was the slower server here (${slowNginx.map((name) => `${fmt(g(name).nginx)} against our ${fmt(g(name).ours)}`).join("; ")}), where s3.md §11.1 measured 3.7 GB/s on the reference machine; the storage section of this file sees the same on this VM. G4 is met, but the ratio flatters us: compare the absolute rates too.`,
      );
    }
    return renderSection(
      "## S3 API (storage --s3-listen)",
      [
        `Run ${new Date().toISOString().slice(0, 16)}Z on ${machine()}, in ${(seconds(began) / 60).toFixed(1)} min. Command: \`make bench-s3\` (also part of \`make bench\`; \`test/bench/s3.ts\`). Goals: G1–G4, G6 and G8 of s3.md §11.3. The server is \`node dist/src/cli.js storage --s3-listen\` (durability full unless stated) in a child process on a temp root under ${os.tmpdir()}; every baseline ran on the same disk in the same run.`,
      ],
      rows,
      notes,
    );
  } finally {
    await reader?.close();
    await store.close();
    await pool.close();
  }
}

await runBench({ section: "s3", dir, children, scale: SCALE, began, log, main, beforeStop: closeAgent });
