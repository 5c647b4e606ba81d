// `make bench` part 4 (alone: `make bench-s3-peer`): our S3 API (`storage --s3-listen`, durability full)
// side by side with a peer, versitygw with its posix backend (which does not fsync), on the same disk with
// the same clients in the same run, the two servers taking turns figure by figure. Every ratio is a speed
// ratio, ours ÷ the peer's (above 1: ours is faster). Everything lives in one temp dir.
import { randomBytes, randomFillSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pinnedVersions } from "../cluster/binaries.js";
import { type Child } from "../cluster/processes.js";
import { presignTarget, signRequest } from "../s3/signer.js";
import { gibps, runBench, seconds, syncDisk, wrkPutScript, wrkRun, type BenchDir, type WrkResult } from "./benchServers.js";
import { machine, ratio, renderSection, type Row } from "./report.js";
import { BUCKET, buildPut, closeAgent, curlGets, describe, expectStatus, freshAgent, listAll, multipartUpload, payload, planParts, s3Delete, startS3, startVersity, type S3Server } from "./s3Client.js";
import { cpuSeconds, statusKiB } from "./storageHelpers.js";

const KiB = 1024;
const MiB = 1024 ** 2;
/** BENCH_STORAGE_SCALE=0.05 shrinks every transfer (and the wrk runs) for a quick smoke run of the script itself. */
const SCALE = Number(process.env.BENCH_STORAGE_SCALE ?? 1);
const mib = (bytes: number) => Math.max(MiB, Math.round((bytes * SCALE) / MiB) * MiB);
/** kopia's pack blobs are 20–28 MiB, each one PUT. */
const OBJECT_BYTES = 25 * MiB;
const OBJECTS_PER_PASS = Math.max(2, Math.round(8 * SCALE));
/** kopia writes through minio-go, whose multipart parts are 16 MiB; minio-go sends 4 at a time. */
const LARGE_BYTES = mib(256 * MiB);
const PART_BYTES = Math.min(16 * MiB, LARGE_BYTES);
const PART_CONCURRENCY = 4;
const SMALL_BYTES = 4 * KiB;
const LIST_KEYS = Math.max(100, Math.round(2_000 * SCALE));
const WRK_SECONDS = Number(process.env.BENCH_SECONDS ?? (SCALE < 1 ? 1 : 5));
const ROUNDS = 3;
/** Distinct keys the 4 KiB PUT loops cycle through. */
const PUT_KEYS = 1000;
const PEER = `versitygw ${pinnedVersions().VERSITYGW}`;

const log = (line: string) => console.log(`[bench:s3-peer] ${line}`);
const load = () => `(load ${os.loadavg()[0]!.toFixed(2)})`;
const began = performance.now();
const dir = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-s3-peer-bench-"));
const children: Child[] = [];
const bench: BenchDir = { dir, children };

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmtRate = (rate: number) => `${rate.toFixed(2)} GiB/s`;
const fmtReq = (rate: number) => `${rate.toFixed(0)} req/s`;
const fmtMs = (value: number) => `${value.toFixed(2)} ms`;

type Who = "ours" | "peer";
const WHO: Who[] = ["ours", "peer"];

/** Every round's value of each figure, per server, and the servers' CPU seconds over the figure. */
interface Figure {
  values: Record<Who, number[]>;
  cpu: Record<Who, number>;
  extra: Record<Who, number[]>;
}
const figures = new Map<string, Figure>();
const figure = (name: string) => figures.get(name) ?? figures.set(name, { values: { ours: [], peer: [] }, cpu: { ours: 0, peer: 0 }, extra: { ours: [], peer: [] } }).get(name)!;

/** Runs `body` against one server, adding its CPU seconds to the figure's. */
async function measured<T>(name: string, who: Who, server: S3Server, body: () => Promise<T>): Promise<T> {
  const pid = server.child.process.pid!;
  const cpu0 = cpuSeconds(pid);
  const result = await body();
  figure(name).cpu[who] += cpuSeconds(pid) - cpu0;
  return result;
}

async function main(): Promise<string> {
  const loadBefore = os.loadavg()[0]!;
  log(`temp dir ${dir}; ${os.availableParallelism()} cores; 1-minute load average ${loadBefore.toFixed(2)}; scale ${SCALE}`);
  const servers: Record<Who, S3Server> = {
    ours: await startS3(bench, "ours", path.join(dir, "ours"), "full"),
    peer: await startVersity(bench, "versitygw", path.join(dir, "versitygw")),
  };

  // --- 1. 4 KiB GET and PUT at 32 connections (wrk -t1, presigned URLs) ---
  const small = payload(randomBytes(SMALL_BYTES));
  const bodyFile = path.join(dir, "body-4kib");
  writeFileSync(bodyFile, small.body);
  const SMALL_KEY = "small/4kib.bin";
  const wrkTargets: Record<Who, { get: string; putScript: string; base: string }> = {} as never;
  for (const who of WHO) {
    const s = servers[who];
    await expectStatus(s.port, await buildPut("unsigned", s.host, SMALL_KEY, small), [200], `${s.name}: PutObject 4 KiB`);
    const get = await presignTarget("GET", `/${BUCKET}/${SMALL_KEY}`, s.host, { expiresIn: 3600 });
    const putPaths = await Promise.all(Array.from({ length: PUT_KEYS }, (_, i) => presignTarget("PUT", `/${BUCKET}/smallput/k${String(i).padStart(4, "0")}`, s.host, { expiresIn: 3600 })));
    // Each presigned request once through node:http first: a refusal is reported with the exact exchange.
    await expectStatus(s.port, { method: "GET", target: get, headers: { host: s.host } }, [200], `${s.name}: presigned GET`);
    await expectStatus(s.port, { method: "PUT", target: putPaths[0]!, headers: { host: s.host, "content-length": String(SMALL_BYTES) }, body: small.body }, [200], `${s.name}: presigned PUT`);
    wrkTargets[who] = { get: `http://${s.host}${get}`, putScript: wrkPutScript(path.join(dir, `put-${who}.lua`), putPaths), base: `http://${s.host}/` };
  }
  log(`4 KiB GET and PUT at 32 connections: 1 s warm-up, then ${ROUNDS} rounds of ${WRK_SECONDS} s alternating ours and ${PEER} ${load()}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const op of ["get", "put"] as const) {
      const line: string[] = [];
      for (const who of WHO) {
        const t = wrkTargets[who];
        const run = (secs: number): WrkResult => (op === "get" ? wrkRun(t.get, secs) : wrkRun(t.base, secs, { script: t.putScript, env: { BODY: bodyFile } }));
        if (round === 0) run(1);
        const result = await measured(`${op}-4k`, who, servers[who], () => Promise.resolve(run(WRK_SECONDS)));
        figure(`${op}-4k`).values[who].push(result.rate);
        figure(`${op}-4k`).extra[who].push(result.p99Ms);
        line.push(`${who} ${fmtReq(result.rate)} p99 ${fmtMs(result.p99Ms)}`);
      }
      log(`  round ${round + 1}, 4 KiB ${op.toUpperCase()}: ${line.join(", ")}`);
    }
  }

  // --- 2. 25 MiB PUTs, UNSIGNED-PAYLOAD + Content-MD5 (kopia over HTTPS), 1 stream ---
  const big = payload(randomBytes(OBJECT_BYTES));
  log(`25 MiB PUT (UNSIGNED-PAYLOAD + Content-MD5), 1 stream: ${ROUNDS} passes of ${OBJECTS_PER_PASS} objects each, signed before the pass, deleted and synced after ${load()}`);
  for (let round = 0; round < ROUNDS; round++) {
    freshAgent();
    const line: string[] = [];
    for (const who of WHO) {
      const s = servers[who];
      const keys = Array.from({ length: OBJECTS_PER_PASS }, (_, i) => `w/${round}-${i}`);
      const requests = await Promise.all(keys.map((key) => buildPut("unsigned", s.host, key, big)));
      const t0 = performance.now();
      await measured("put-25m", who, s, async () => {
        for (const request of requests) {
          const reply = await expectStatus(s.port, request, [200], `${s.name}: PutObject 25 MiB`);
          if (reply.headers.etag !== `"${big.md5Hex}"`) throw new Error(`${s.name}: PutObject answered ETag ${reply.headers.etag}:\n${describe(request, reply)}`);
        }
      });
      const r = gibps(OBJECTS_PER_PASS * OBJECT_BYTES, seconds(t0));
      figure("put-25m").values[who].push(r);
      line.push(`${who} ${fmtRate(r)}`);
      for (const key of keys) await s3Delete(s, key);
      syncDisk();
    }
    log(`  pass ${round + 1}: ${line.join(", ")}`);
  }

  // --- 3. multipart upload of 256 MiB in 16 MiB parts, 4 at a time; then GET it ---
  const data = randomFillSync(Buffer.allocUnsafe(LARGE_BYTES));
  const plan = planParts(data, PART_BYTES);
  const LARGE_KEY = "large/object.bin";
  log(`multipart ${LARGE_BYTES / MiB} MiB: ${plan.parts.length} parts of ${PART_BYTES / MiB} MiB (UNSIGNED-PAYLOAD), ${PART_CONCURRENCY} at a time, Create to Complete ${load()}`);
  for (let round = 0; round < ROUNDS; round++) {
    freshAgent();
    const line: string[] = [];
    for (const who of WHO) {
      const s = servers[who];
      const key = round === ROUNDS - 1 ? LARGE_KEY : `mpu/${round}`;
      const t0 = performance.now();
      const phases = await measured("mpu", who, s, () => multipartUpload(s, key, plan, "unsigned", PART_CONCURRENCY));
      const r = gibps(LARGE_BYTES, seconds(t0));
      figure("mpu").values[who].push(r);
      figure("mpu").extra[who].push(phases.complete);
      line.push(`${who} ${fmtRate(r)} (Complete ${phases.complete.toFixed(2)} s)`);
      if (key !== LARGE_KEY) await s3Delete(s, key);
      syncDisk();
    }
    log(`  round ${round + 1}: ${line.join(", ")}`);
  }
  log(`GET ${LARGE_BYTES / MiB} MiB (curl, header-signed): warm-up, then ${ROUNDS} rounds ${load()}`);
  for (let round = -1; round < ROUNDS; round++) {
    const line: string[] = [];
    for (const who of WHO) {
      const s = servers[who];
      const signed = await signRequest({ method: "GET", target: `/${BUCKET}/${LARGE_KEY}`, headers: {} }, s.host);
      const r = await measured(round < 0 ? "warm-up" : "get-large", who, s, () => curlGets(`http://${s.host}/${BUCKET}/${LARGE_KEY}`, signed.headers, 1, LARGE_BYTES));
      if (round < 0) continue;
      figure("get-large").values[who].push(r);
      line.push(`${who} ${fmtRate(r)}`);
    }
    if (round >= 0) log(`  round ${round + 1}: ${line.join(", ")}`);
  }

  // --- 4. ListObjectsV2 of 2,000 keys, kopia's query, pages of 1,000 ---
  freshAgent();
  const tiny = payload(randomBytes(64));
  const listKeys = Array.from({ length: LIST_KEYS }, () => `list/p${randomBytes(16).toString("hex")}`);
  for (const who of WHO) {
    const s = servers[who];
    for (let i = 0; i < listKeys.length; i += 32) {
      await Promise.all(listKeys.slice(i, i + 32).map(async (key) => expectStatus(s.port, await buildPut("unsigned", s.host, key, tiny), [200], `${s.name}: PutObject (listing fixture)`)));
    }
  }
  log(`ListObjectsV2 of ${LIST_KEYS} keys (written 32 at a time through each API): warm-up, then ${ROUNDS} rounds ${load()}`);
  for (let round = -1; round < ROUNDS; round++) {
    const line: string[] = [];
    for (const who of WHO) {
      const s = servers[who];
      const t0 = performance.now();
      const listed = await measured(round < 0 ? "warm-up" : "list", who, s, () => listAll(s, "list/"));
      const elapsed = seconds(t0);
      if (listed !== LIST_KEYS) throw new Error(`${s.name}: ListObjectsV2 returned ${listed} keys, expected ${LIST_KEYS}`);
      if (round < 0) continue;
      figure("list").values[who].push(elapsed * 1000);
      line.push(`${who} ${(elapsed * 1000).toFixed(0)} ms`);
    }
    if (round >= 0) log(`  round ${round + 1}: ${line.join(", ")}`);
  }

  // --- report ---
  const rss = Object.fromEntries(WHO.map((who) => [who, statusKiB(servers[who].child.process.pid!, "VmHWM") / 1024])) as Record<Who, number>;
  const x = (name: string, who: Who) => median(figure(name).extra[who]);
  /**
   * Each figure's speed ratio is the median over rounds of that round's ratio: the two servers run back
   * to back within a round, so a change in the machine's load between rounds cancels out. A rate's
   * speed ratio is ours over the peer's; a time's is the peer's over ours.
   */
  const speed = (ours: number[], peer: number[], rate: boolean) => median(ours.map((o, i) => (rate ? o / peer[i]! : peer[i]! / o)));
  const row = (label: string, name: string, which: "values" | "extra", rate: boolean, show: (v: number) => string, goal = "≥ 1.0", met?: boolean): Row => {
    const f = figure(name);
    const r = speed(f[which].ours, f[which].peer, rate);
    return { figure: label, ours: show(median(f[which].ours)), baseline: show(median(f[which].peer)), ratio: r.toFixed(2), goal, met: met ?? (goal === "" ? undefined : r >= 1) };
  };
  const rows: Row[] = [
    row(`4 KiB GET rate, presigned (wrk -t1, 32 connections, ${WRK_SECONDS} s)`, "get-4k", "values", true, fmtReq),
    row("… its p99 latency", "get-4k", "extra", false, fmtMs, "< 10 ms", x("get-4k", "ours") < 10),
    row(`4 KiB PUT rate, presigned (wrk -t1, 32 connections, ${WRK_SECONDS} s, cycling through ${PUT_KEYS} keys)`, "put-4k", "values", true, fmtReq),
    row("… its p99 latency", "put-4k", "extra", false, fmtMs, ""),
    row(`25 MiB PUT, UNSIGNED-PAYLOAD + Content-MD5, 1 stream (${OBJECTS_PER_PASS} in a row)`, "put-25m", "values", true, fmtRate),
    row(`multipart ${LARGE_BYTES / MiB} MiB: ${plan.parts.length} × ${PART_BYTES / MiB} MiB UploadPart (UNSIGNED-PAYLOAD), ${PART_CONCURRENCY} at a time, Create to Complete`, "mpu", "values", true, fmtRate),
    row("… of which CompleteMultipartUpload", "mpu", "extra", false, (v) => `${(v * 1000).toFixed(0)} ms`, ""),
    row(`GET ${LARGE_BYTES / MiB} MiB (curl, header-signed)`, "get-large", "values", true, fmtRate),
    row(`ListObjectsV2 of ${LIST_KEYS} keys, pages of 1,000 (kopia's query, header-signed)`, "list", "values", false, (v) => `${v.toFixed(0)} ms`),
    { figure: "peak RSS of the server over the run (VmHWM)", ours: `${rss.ours.toFixed(0)} MiB`, baseline: `${rss.peer.toFixed(0)} MiB`, ratio: ratio(rss.peer, rss.ours), goal: "flat", met: undefined },
  ];
  const cpuPer = (name: string, who: Who, per: number) => (figure(name).cpu[who] / per).toFixed(2);
  const gib = (bytes: number) => bytes / 1024 ** 3;
  const puts25 = ROUNDS * OBJECTS_PER_PASS * OBJECT_BYTES;
  const notes = [
    `Ours: \`node dist/src/cli.js storage --s3-listen --durability full\` (data, metadata record and directory entries fsynced before the 200). ${PEER}: \`versitygw posix\` built from the Go module proxy (\`test/bench/peers\`, cached under .cache/bin), metadata in extended attributes, no fsync. Both run as child processes on temp roots under ${os.tmpdir()} on the same disk, with the same access keys, and take turns: every round runs ours, then the peer.`,
    `Clients: wrk -t1 for the 4 KiB figures (presigned URLs, 1 h expiry, ${ROUNDS} rounds of ${WRK_SECONDS} s after a 1 s warm-up); a node:http keep-alive client for PUTs, multipart and listing with every request signed before it is timed (\`test/bench/s3Client.ts\`, the one \`make bench-s3\` uses); curl for the GET. Figures are medians of ${ROUNDS} rounds; each ratio is the median of the rounds' ratios (the servers run back to back within a round, so load that changes between rounds cancels). Ratios are speeds, ours ÷ the peer's: a rate over the peer's rate, or the peer's time over ours.`,
    `Server CPU-seconds, ours / peer: 4 KiB GET ${cpuPer("get-4k", "ours", 1)} / ${cpuPer("get-4k", "peer", 1)} and PUT ${cpuPer("put-4k", "ours", 1)} / ${cpuPer("put-4k", "peer", 1)} over their runs; per GiB of 25 MiB PUTs ${cpuPer("put-25m", "ours", gib(puts25))} / ${cpuPer("put-25m", "peer", gib(puts25))}, of multipart ${cpuPer("mpu", "ours", gib(ROUNDS * LARGE_BYTES))} / ${cpuPer("mpu", "peer", gib(ROUNDS * LARGE_BYTES))}, of GETs ${cpuPer("get-large", "ours", gib(ROUNDS * LARGE_BYTES))} / ${cpuPer("get-large", "peer", gib(ROUNDS * LARGE_BYTES))}.`,
    `Round values, ours | peer: ${[...figures.entries()]
      .filter(([name]) => name !== "warm-up")
      .map(([name, f]) => `${name} ${f.values.ours.map((v) => v.toFixed(2)).join(" / ")} | ${f.values.peer.map((v) => v.toFixed(2)).join(" / ")}`)
      .join("; ")}.`,
    `Client and servers share the machine's ${os.availableParallelism()} cores. The 1-minute load average was ${loadBefore.toFixed(2)} when the run started and ${os.loadavg()[0]!.toFixed(2)} when it ended${Math.max(loadBefore, os.loadavg()[0]!) >= 1 ? " (other work on the machine: it slows both servers, but not always equally)" : ""}.`,
  ];
  return renderSection(
    `## S3 API against a peer (${PEER}, posix backend)`,
    [`Run ${new Date().toISOString().slice(0, 16)}Z on ${machine()}, in ${(seconds(began) / 60).toFixed(1)} min. Command: \`make bench-s3-peer\` (also part of \`make bench\`; \`test/bench/s3Peer.ts\`). Goal (issue 17): ≥ 1.0 on every figure with ours durable, p99 of the 4 KiB GET under 10 ms at 32 connections, flat memory.`],
    rows,
    notes,
  );
}

await runBench({ section: "s3-peer", dir, children, scale: SCALE, began, log, main, beforeStop: closeAgent });
