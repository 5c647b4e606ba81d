// Helpers shared by the storage and S3 benchmarks (test/bench/storage.ts, test/bench/s3.ts): the
// baseline servers (nginx from Debian's package under .cache/deb/root), wrk, the single-core MD5
// rate and the raw durable-write loop every write figure is compared with.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import path from "node:path";
import { cacheDir, pinnedVersions } from "../cluster/binaries.js";
import { startChild, type Child } from "../cluster/processes.js";
import { until } from "../cluster/wait.js";
import { writeSection } from "./report.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export const debRoot = path.join(cacheDir, "deb", "root");
export const wrkBinary = path.join(debRoot, "usr/bin/wrk");
export const nginxBinary = path.join(debRoot, "usr/sbin/nginx");
/** hey, built by `make bench` (Makefile: $(BIN)/hey-$(HEY)). */
export const heyBinary = path.join(cacheDir, "bin", `hey-${pinnedVersions().HEY}`);

/** A benchmark's temp dir (children's logs and nginx's prefix live there) and the children it started. */
export interface BenchDir {
  dir: string;
  children: Child[];
}

export const gibps = (bytes: number, seconds: number) => bytes / GiB / seconds;
export const seconds = (since: number) => (performance.now() - since) / 1000;

// --- servers ---------------------------------------------------------------------------------

export async function startServer(bench: BenchDir, name: string, command: string, args: string[], probeUrl: string, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const child = startChild(name, command, args, path.join(bench.dir, `${name}.log`), env);
  bench.children.push(child);
  await until(
    `${name} to answer ${probeUrl}`,
    async () => {
      if (child.process.exitCode !== null || child.process.signalCode !== null) throw new Error(`${name} exited:\n${child.tail()}`);
      const res = await fetch(probeUrl).catch(() => undefined);
      await res?.arrayBuffer();
      return res ? true : undefined;
    },
    20_000,
    100,
  );
  return child;
}

/**
 * nginx serving `root` on 127.0.0.1:`port` (sendfile, one process); `serverExtra` adds directives
 * to the server block (e.g. a WebDAV location).
 */
export async function startNginx(bench: BenchDir, port: number, root: string, serverExtra: string[] = []): Promise<Child> {
  const prefix = path.join(bench.dir, "nginx");
  mkdirSync(prefix);
  const conf = path.join(prefix, "nginx.conf");
  const temp = (name: string) => `${name}_temp_path ${path.join(prefix, name)};`;
  writeFileSync(
    conf,
    [
      // The bench runs as root in CI containers: workers would otherwise drop to nobody and not reach the 0700 temp dir.
      ...(process.getuid?.() === 0 ? ["user root;"] : []),
      "worker_processes 1;",
      // One process, no master: startChild's parent-death signal then reaches the process that serves,
      // so a killed benchmark leaves no orphaned nginx worker behind. It serves exactly as a worker would.
      "master_process off;",
      `pid ${path.join(prefix, "nginx.pid")};`,
      "error_log stderr warn;",
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      "  sendfile on;",
      "  default_type application/octet-stream;",
      // Node's server never closes a keep-alive connection after N requests; neither does this one.
      "  keepalive_requests 1000000;",
      `  ${temp("client_body")} ${temp("proxy")} ${temp("fastcgi")} ${temp("uwsgi")} ${temp("scgi")}`,
      // The store's layout is <root>/<bucket>/<key>, so nginx serves the very same files at the same paths.
      `  server { listen 127.0.0.1:${port}; root ${root}; location / { }${serverExtra.length > 0 ? ` ${serverExtra.join(" ")}` : ""} }`,
      "}",
      "",
    ].join("\n"),
  );
  return startServer(bench, "nginx", nginxBinary, ["-p", prefix, "-c", conf, "-e", "stderr", "-g", "daemon off;"], `http://127.0.0.1:${port}/`);
}

export function nginxVersion(): string {
  // nginx -v prints to stderr.
  return /nginx\/(\S+)/.exec(spawnSync(nginxBinary, ["-v"], { encoding: "utf8" }).stderr)?.[1] ?? "";
}

// --- wrk -------------------------------------------------------------------------------------

export interface WrkResult {
  rate: number;
  p99Ms: number;
}

/** `wrk -t1 -c32 --latency` for `duration` seconds; `script` is a Lua file (wrk -s), `env` reaches it. */
export function wrkRun(url: string, duration: number, options: { script?: string; env?: NodeJS.ProcessEnv } = {}): WrkResult {
  const env = { ...process.env, ...options.env, LD_LIBRARY_PATH: path.join(debRoot, "usr/lib/x86_64-linux-gnu") };
  const script = options.script ? ["-s", options.script] : [];
  const out = execFileSync(wrkBinary, ["-t1", "-c32", `-d${duration}s`, "--latency", ...script, url], { env, encoding: "utf8" });
  const problem = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out);
  if (problem) throw new Error(`wrk against ${url.split("?")[0]}: ${problem[0]}\n${out}`);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
  if (!p99) throw new Error(`no p99 in wrk's output:\n${out}`);
  const unit = { us: 0.001, ms: 1, s: 1000 }[p99[2] as "us" | "ms" | "s"];
  return { rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p99Ms: Number(p99[1]) * unit };
}

/** A Lua script for wrk (written to `file`): PUT the body file named by $BODY, cycling through `paths`. */
export function wrkPutScript(file: string, paths: string[]): string {
  const lines = [
    "-- wrk: PUT the body file named by BODY, cycling through the paths.",
    'local f = assert(io.open(os.getenv("BODY"), "rb"))',
    'local body = f:read("*a")',
    "f:close()",
    `local paths = { ${paths.map((p) => JSON.stringify(p)).join(", ")} }`,
    "local i = 0",
    "request = function()",
    "  i = i % #paths + 1",
    '  return wrk.format("PUT", paths[i], nil, body)',
    "end",
  ];
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/**
 * `hey -c32` for `duration` seconds with Go limited to one core (like wrk -t1): for HEAD, which wrk
 * cannot measure (its parser waits for the body a HEAD response's Content-Length announces).
 */
export function heyRun(url: string, duration: number, method = "GET"): WrkResult {
  const out = execFileSync(heyBinary, ["-z", `${duration}s`, "-c", "32", "-m", method, url], { env: { ...process.env, GOMAXPROCS: "1" }, encoding: "utf8" });
  const statuses = out.split("Status code distribution:")[1] ?? "";
  if (!/\[200\]\s+\d+ responses/.test(statuses) || /\[(?!200\])\d{3}\]/.test(statuses) || out.includes("Error distribution")) {
    throw new Error(`hey against ${url.split("?")[0]} saw failed or non-200 responses:\n${out}`);
  }
  const p99 = /99%+ in ([\d.]+) secs/.exec(out);
  if (!p99) throw new Error(`no p99 in hey's output:\n${out}`);
  return { rate: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p99Ms: Number(p99[1]) * 1000 };
}

// --- hashing and the raw disk ----------------------------------------------------------------

/** One core's rate in GiB/s of the given hashes run one after the other (node crypto over `body`, for at least a second). */
export function hashRate(body: Buffer, algorithms: string[]): number {
  const t0 = performance.now();
  let bytes = 0;
  while (performance.now() - t0 < 1_200) {
    for (const algorithm of algorithms) createHash(algorithm).update(body).digest();
    bytes += body.length;
  }
  return gibps(bytes, seconds(t0));
}

/** One core's MD5 rate in GiB/s: node crypto over the 25 MiB body for at least a second. */
export function md5Rate(body: Buffer): number {
  return hashRate(body, ["md5"]);
}

/**
 * What a careful program does without the store: write, fdatasync, rename into place, fsync the
 * directory. It writes in 1 MiB pieces, as the store does (one 25 MiB write measured no faster here).
 */
export async function rawDurableWrite(body: Buffer, tempDir: string, finalDir: string, name: string): Promise<void> {
  const temp = path.join(tempDir, name);
  const file = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
  try {
    for (let offset = 0; offset < body.length; ) offset += (await file.write(body, offset, Math.min(MiB, body.length - offset), offset)).bytesWritten;
    await file.datasync();
  } finally {
    await file.close();
  }
  await rename(temp, path.join(finalDir, name));
  const directory = await open(finalDir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** Flushes everything dirty to disk, so the next figure starts with nothing left to write back. */
export function syncDisk(): void {
  execFileSync("sync");
}

/**
 * Runs a benchmark's `main` and writes its section (full scale only), removing the temp dir and
 * stopping the servers however it ends, SIGINT/SIGTERM included.
 */
export async function runBench(options: {
  section: string;
  dir: string;
  children: Child[];
  scale: number;
  began: number;
  log: (line: string) => void;
  main: () => Promise<string>;
  /** Extra cleanup before the servers stop (e.g. closing a keep-alive agent). */
  beforeStop?: () => void;
}): Promise<void> {
  const { dir, children, log } = options;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the servers and removing ${dir}`);
      for (const c of children) c.process.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  }
  try {
    const section = await options.main();
    console.log(section);
    if (options.scale === 1) writeSection(options.section, section);
    else log(`BENCH_STORAGE_SCALE=${options.scale}: a smoke run, docs/benchmarks.md left alone`);
    log(`done in ${seconds(options.began).toFixed(0)} s`);
  } finally {
    options.beforeStop?.();
    await Promise.all(children.map((c) => c.stop(3_000)));
    rmSync(dir, { recursive: true, force: true });
  }
}
