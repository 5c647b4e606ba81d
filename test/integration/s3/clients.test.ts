import { createHash, randomBytes, randomInt } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { kopiaTool, rcloneTool, resticTool, s3cmdTool } from "../../s3/clientTools.js";
import { ACCESS_KEY, SECRET_KEY, startS3, type S3TestServer } from "../../s3/harness.js";
import { storeListing } from "../../s3/inspect.js";
import { runTool, runToolOk, type RunOptions, type ToolRun } from "../../s3/runTool.js";
import { createCa } from "../../../src/certs/authority.js";
import { awsCli } from "../../s3/awsCli.js";

/**
 * Real S3 clients against the in-process S3 server: kopia (the fork Velero links, both over HTTP with
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk signatures and over HTTPS with UNSIGNED-PAYLOAD), restic,
 * awscli, s3cmd and rclone. Every test restores what it uploaded and compares it byte for byte.
 * The clients run as async child processes (test/s3/runTool.ts): the server shares this event loop.
 * `S3_TEST_LOG=1` prints the server's log, `S3_CLIENT_LOG=1` every client command with its output.
 */

const MiB = 1024 * 1024;
const KOPIA_BUCKET = "backups";
/** Where Velero puts a namespace's kopia repository under a BSL prefix. */
const KOPIA_PREFIX = "velero/kopia/ns1/";

// --- test data ----------------------------------------------------------------------------------

/** Writes `size` random bytes a MiB at a time (never the whole file in memory). */
async function writeRandomFile(file: string, size: number): Promise<void> {
  const handle = await open(file, "w");
  try {
    for (let left = size; left > 0; left -= MiB) await handle.write(randomBytes(Math.min(left, MiB)));
  } finally {
    await handle.close();
  }
}

/** Names that need escaping in a URL path or a signature (space, '+', '=', '%', UTF-8, '~', parentheses). */
const ODD_NAMES = ["a file with spaces.txt", "plus+and=equals.txt", "ümlaut-ß-日本.txt", "percent%20sign.txt", "tilde~(paren)!.txt"];

/**
 * A tree of `count` small files of random sizes (a tenth empty, a few up to 1 MiB) in nested
 * folders, the odd names above and two empty folders.
 */
async function writeSmallTree(dir: string, count: number): Promise<void> {
  mkdirSync(join(dir, "empty"), { recursive: true });
  mkdirSync(join(dir, "d0", "also-empty"), { recursive: true });
  for (let i = 0; i < count; i++) {
    const folder = i % 17 === 0 ? dir : i % 3 === 0 ? join(dir, `d${i % 6}`) : join(dir, `d${i % 6}`, `sub${i % 4}`, i % 5 === 0 ? "deeper" : "");
    mkdirSync(folder, { recursive: true });
    const size = i % 10 === 0 ? 0 : i % 25 === 1 ? randomInt(64 * 1024, MiB) : randomInt(1, 48 * 1024);
    await writeRandomFile(join(folder, `file-${String(i).padStart(3, "0")}.bin`), size);
  }
  mkdirSync(join(dir, "odd"), { recursive: true });
  for (const name of ODD_NAMES) writeFileSync(join(dir, "odd", name), `${name}\n${randomBytes(2000).toString("base64")}\n`);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Every entry under `dir`, sorted: files as `path → "<size> <sha256>"`, folders as `path/ → "dir"`
 * (left out with `filesOnly`, for clients that keep no folders: S3 has none).
 */
async function hashTree(dir: string, options: { filesOnly?: boolean } = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (folder: string, prefix: string): Promise<void> => {
    const entries = (await readdir(folder, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = `${prefix}${entry.name}`;
      const full = join(folder, entry.name);
      if (entry.isDirectory()) {
        if (!options.filesOnly) out[`${rel}/`] = "dir";
        await walk(full, `${rel}/`);
      } else if (entry.isFile()) {
        out[rel] = `${(await stat(full)).size} ${await sha256File(full)}`;
      } else {
        out[rel] = "not a regular file";
      }
    }
  };
  await walk(dir, "");
  return out;
}

function filesOf(tree: Record<string, string>): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const value of Object.values(tree)) {
    if (value === "dir") continue;
    count++;
    bytes += Number(value.split(" ")[0]);
  }
  return { count, bytes };
}

/** The files under `dir` (relative, '/'-separated) → size, as a listing shows them. */
async function treeSizes(dir: string): Promise<Record<string, number>> {
  return Object.fromEntries([...(await filesOnDisk(dir))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Files under `dir` (relative, '/'-separated) with their sizes. */
async function filesOnDisk(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (folder: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(folder, entry.name), `${prefix}${entry.name}/`);
      else out.set(`${prefix}${entry.name}`, (await stat(join(folder, entry.name))).size);
    }
  };
  await walk(dir, "");
  return out;
}

const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");

/** One request as the server saw it (headers as sent) and answered it. */
interface SeenRequest {
  method: string;
  url: string;
  /** x-amz-content-sha256: the payload mode, or a hex digest shown as "sha256". */
  payload: string;
  contentEncoding?: string;
  expect?: string;
  status: number;
  requestId: string;
}

/**
 * Records every request the server answers, by listening on its Node server next to the S3 handler
 * (requests with `Expect: 100-continue` are re-emitted as "request" too); reads headers only.
 */
function recordRequests(s3: S3TestServer): { requests: SeenRequest[]; stop(): void } {
  const requests: SeenRequest[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const sha = req.headers["x-amz-content-sha256"];
    const payload = typeof sha !== "string" ? "(none)" : /^[0-9a-f]{64}$/.test(sha) ? "sha256" : sha;
    res.once("close", () =>
      requests.push({
        method: req.method ?? "?",
        url: req.url ?? "?",
        payload,
        contentEncoding: req.headers["content-encoding"],
        expect: req.headers.expect,
        status: res.statusCode,
        requestId: String(res.getHeader("x-amz-request-id")),
      }),
    );
  };
  s3.server.server.on("request", listener);
  return { requests, stop: () => s3.server.server.off("request", listener) };
}

/** "PUT STREAMING-AWS4-HMAC-SHA256-PAYLOAD 200 ×12, GET (none) 206 ×40, …" */
function summarize(requests: SeenRequest[]): string {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const key = `${r.method} ${r.payload}${r.contentEncoding ? ` (encoding ${r.contentEncoding})` : ""}${r.expect ? ` (expect ${r.expect})` : ""} ${r.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key} ×${n}`).join(", ");
}

/** Failed requests a client must never see from a correct server: 5xx, 400 and 403 (signature, malformed). */
function badAnswers(requests: SeenRequest[]): string[] {
  return requests.filter((r) => r.status >= 500 || r.status === 400 || r.status === 403).map((r) => `${r.method} ${r.url} → ${r.status} (request id ${r.requestId})`);
}

/** Per-step timings of one test and the requests the server saw, logged at the end. */
class Steps {
  private readonly parts: string[] = [];
  private readonly recorders: ReturnType<typeof recordRequests>[];
  constructor(
    private readonly name: string,
    private readonly servers: S3TestServer[],
  ) {
    this.recorders = servers.map(recordRequests);
    // Also when the test fails half way.
    onTestFinished(() => this.recorders.forEach((r) => r.stop()));
  }
  get requests(): SeenRequest[] {
    return this.recorders.flatMap((r) => r.requests);
  }
  /** The PUTs' payload modes (x-amz-content-sha256), each once. */
  putModes(): string[] {
    return [...new Set(this.requests.filter((r) => r.method === "PUT").map((r) => r.payload))].sort();
  }
  async run(step: string, action: () => Promise<ToolRun>): Promise<ToolRun> {
    const run = await action();
    this.parts.push(`${step} ${(run.ms / 1000).toFixed(1)}s`);
    return run;
  }
  /**
   * Prints timings and the request summary. Requires that no request got a 5xx, 400 or 403 (a client
   * that retried one still hit a server fault), and that the store holds no temp files, open uploads,
   * strays or orphaned metadata records.
   */
  async finish(): Promise<void> {
    for (const recorder of this.recorders) recorder.stop();
    console.log(`[${this.name}] ${this.parts.join(", ")}\n  requests: ${summarize(this.requests)}`);
    await this.checkpoint("at the end");
    expect({ badAnswers: badAnswers(this.requests), leftovers: this.leftovers }).toEqual({ badAnswers: [], leftovers: [] });
  }
  private readonly leftovers: string[] = [];
  /** Notes temp files, open uploads, strays and orphaned metadata records in the stores now (finish() requires none). */
  async checkpoint(when: string): Promise<void> {
    for (const s3 of this.servers) {
      const listing = await storeListing(s3.root);
      const found = [...listing.temp, ...listing.strays, ...Object.keys(listing.uploads).map((id) => `open upload ${id}`)];
      this.leftovers.push(...found.map((entry) => `${when}: ${entry}`));
    }
  }
}

// --- the suite ----------------------------------------------------------------------------------

describe("real S3 clients against the S3 server", () => {
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-s3-clients-"));
  /** kopia's source: `tree/` plus a 100 MiB random file. */
  const data = join(work, "data");
  /** restic's, rclone's and awscli sync's source: ~300 small files, odd names, empty folders. */
  const tree = join(data, "tree");
  const big = join(data, "big.bin");
  let treeHashes: Record<string, string>;
  let dataHashes: Record<string, string>;
  let http: S3TestServer;
  let https: S3TestServer;

  beforeAll(async () => {
    [http, https] = await Promise.all([
      startS3({ buckets: [KOPIA_BUCKET, "restic", "rclone", "s3cmd"] }),
      startS3({ tls: true, buckets: [KOPIA_BUCKET] }),
    ]);
    await writeSmallTree(tree, 300);
    await writeRandomFile(big, 100 * MiB);
    treeHashes = await hashTree(tree);
    dataHashes = await hashTree(data);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([http?.close(), https?.close()]);
    rmSync(work, { recursive: true, force: true });
  });

  /** A fresh folder for one client run (its HOME, config, cache, logs, restore target). */
  const scratch = (name: string) => mkdtempSync(join(work, `${name}-`));

  // --- kopia -------------------------------------------------------------------------------------

  interface KopiaSnapshot {
    id: string;
    source: { path: string };
    stats: { totalSize: number; fileCount: number; errorCount: number };
  }
  interface KopiaBlob {
    id: string;
    length: number;
  }

  /** kopia's environment in scratch folder `t`: only the flags reach kopia, no machine-wide CA or AWS settings. */
  const kopiaEnv = (t: string): RunOptions["env"] => ({
    HOME: t,
    KOPIA_PASSWORD: "kopia-test-password",
    KOPIA_LOG_DIR: join(t, "logs"),
    KOPIA_CHECK_FOR_UPDATES: "false",
    KOPIA_USE_KEYRING: "false",
    AWS_CA_BUNDLE: undefined,
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
  });
  /** kopia's S3 storage flags for `s3` under `prefix`, trusting `caPath` over TLS (the server's own CA unless told). */
  const kopiaStorageFlags = (s3: S3TestServer, prefix = KOPIA_PREFIX, caPath = join(s3.work, "ca.pem")) => [
    `--endpoint=${s3.host}`,
    ...(s3.ca ? [`--root-ca-pem-path=${caPath}`] : ["--disable-tls"]),
    `--bucket=${KOPIA_BUCKET}`,
    `--prefix=${prefix}`,
    `--access-key=${ACCESS_KEY}`,
    `--secret-access-key=${SECRET_KEY}`,
  ];

  async function kopiaRoundTrip(s3: S3TestServer, name: string, signal: AbortSignal): Promise<void> {
    const kopia = kopiaTool();
    const t = scratch(name);
    const steps = new Steps(name, [s3]);
    const env = kopiaEnv(t);
    const storageFlags = kopiaStorageFlags(s3);
    const kopiaIn = (config: string) => (args: string[]) => runToolOk(kopia, [`--config-file=${join(t, config)}`, ...args], { env, signal, timeoutMs: 150_000 });

    // Back up as the node agent would: create the repository, snapshot.
    const backup = kopiaIn("backup.config");
    await steps.run("create", () => backup(["repository", "create", "s3", ...storageFlags, `--cache-directory=${join(t, "cache-backup")}`]));
    await steps.run("snapshot", () => backup(["snapshot", "create", data]));

    // Restore through a second connection with its own empty cache, so every byte comes from the server.
    const restore = kopiaIn("restore.config");
    await steps.run("connect", () => restore(["repository", "connect", "s3", ...storageFlags, `--cache-directory=${join(t, "cache-restore")}`]));
    const snapshots = JSON.parse((await steps.run("list", () => restore(["snapshot", "list", data, "--json"]))).stdout) as KopiaSnapshot[];
    expect(snapshots).toHaveLength(1);
    const [snapshot] = snapshots as [KopiaSnapshot];
    const expected = filesOf(dataHashes);
    expect(snapshot.source.path).toBe(data);
    expect(snapshot.stats).toMatchObject({ fileCount: expected.count, totalSize: expected.bytes, errorCount: 0 });
    const out = join(t, "restored");
    await steps.run("restore", () => restore(["snapshot", "restore", snapshot.id, out]));
    expect(await hashTree(out)).toEqual(dataHashes);
    await steps.run("verify", () => restore(["snapshot", "verify", "--verify-files-percent=100"]));

    // What the server stored: kopia's blobs as plain files under <root>/<bucket>/<prefix>, no aws-chunked framing.
    // Over HTTP minio-go signs every chunk; over HTTPS it sends UNSIGNED-PAYLOAD (and no Content-Encoding either way).
    expect(steps.putModes()).toEqual([s3.ca ? "UNSIGNED-PAYLOAD" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]);
    const onDisk = join(s3.root, KOPIA_BUCKET, KOPIA_PREFIX);
    const blobs = JSON.parse((await steps.run("blob list", () => restore(["blob", "list", "--json"]))).stdout) as KopiaBlob[];
    const files = await filesOnDisk(onDisk);
    for (const blob of blobs) expect(files.get(blob.id), `blob ${blob.id} as a file of its length`).toBe(blob.length);
    // Only the log blob of `blob list` itself, written as it exited, may be missing from its own listing.
    expect([...files.keys()].filter((file) => !blobs.some((blob) => blob.id === file) && !file.startsWith("_log_"))).toEqual([]);
    const format = JSON.parse(await readFile(join(onDisk, "kopia.repository"), "utf8")) as Record<string, unknown>;
    expect(format).toHaveProperty("uniqueID");
    expect(format).toHaveProperty("encryption");
    const packs = blobs.filter((blob) => blob.id.startsWith("p"));
    const packBytes = packs.reduce((sum, blob) => sum + blob.length, 0);
    // Random data does not compress: the packs hold at least the 100 MiB file.
    expect(packBytes).toBeGreaterThan(100 * MiB);
    const framing = Buffer.from(";chunk-signature=");
    for (const file of files.keys()) {
      const seen = await (async () => {
        let tailBytes = Buffer.alloc(0);
        for await (const chunk of createReadStream(join(onDisk, file), { highWaterMark: 4 * MiB })) {
          const window = Buffer.concat([tailBytes, chunk as Buffer]);
          if (window.includes(framing)) return true;
          tailBytes = window.subarray(Math.max(0, window.length - framing.length));
        }
        return false;
      })();
      expect(seen, `aws-chunked framing stored in ${file}`).toBe(false);
    }

    // kopia's own provider check: reads, partial reads, metadata, missing blobs, concurrent puts/deletes.
    const validate = await steps.run("validate-provider", () => restore(["repository", "validate-provider", "--concurrency-test-duration=3s"]));
    expect(`${validate.stdout}\n${validate.stderr}`).toMatch(/All good/i);
    // It cleans up after itself: apart from log blobs the prefix holds what it held before.
    const after = await filesOnDisk(onDisk);
    expect([...after.keys()].filter((file) => !file.startsWith("_log_")).sort()).toEqual([...files.keys()].filter((file) => !file.startsWith("_log_")).sort());
    await steps.finish();
  }

  it("kopia over HTTP (signed aws-chunked uploads): create, snapshot 300 files + 100 MiB, restore byte for byte, verify, validate-provider", async ({ signal }) => {
    await kopiaRoundTrip(http, "kopia http", signal);
  }, 180_000);

  it("kopia over HTTPS with the CA (--root-ca-pem-path): the same round trip", async ({ signal }) => {
    await kopiaRoundTrip(https, "kopia https", signal);
  }, 180_000);

  it("kopia over HTTPS trusting another CA refuses the server: repository create fails with a certificate error and writes nothing", async ({ signal }) => {
    const t = scratch("kopia wrong ca");
    const stranger = join(t, "stranger-ca.pem");
    writeFileSync(stranger, createCa({ commonName: "not-the-storage-ca", validityDays: 1 }).certPem);
    const flags = kopiaStorageFlags(https, "velero/kopia/wrong-ca/", stranger);
    const run = await runTool(kopiaTool(), [`--config-file=${join(t, "repo.config")}`, "repository", "create", "s3", ...flags, `--cache-directory=${join(t, "cache")}`], { env: kopiaEnv(t), signal, timeoutMs: 150_000 });
    expect(run.code, run.stdout + run.stderr).not.toBe(0);
    expect(run.stdout + run.stderr).toMatch(/x509: certificate signed by unknown authority|certificate is not trusted/);
    expect(existsSync(join(https.root, KOPIA_BUCKET, "velero", "kopia", "wrong-ca"))).toBe(false);
  }, 180_000);

  // --- restic ------------------------------------------------------------------------------------

  it("restic over HTTP: init, backup, snapshots, restore byte for byte, check --read-data", async ({ signal }) => {
    const restic = resticTool();
    const t = scratch("restic");
    const steps = new Steps("restic http", [http]);
    const env: RunOptions["env"] = {
      HOME: t,
      RESTIC_REPOSITORY: `s3:${http.url}/restic/repo`,
      RESTIC_PASSWORD: "restic-test-password",
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
      AWS_CA_BUNDLE: undefined,
      RESTIC_CACHE_DIR: join(t, "cache"),
    };
    const run = (args: string[]) => runToolOk(restic, args, { env, signal, timeoutMs: 100_000 });
    await steps.run("init", () => run(["init"]));
    await steps.run("backup", () => run(["backup", tree]));
    const snapshots = JSON.parse((await steps.run("snapshots", () => run(["snapshots", "--json"]))).stdout) as { id: string; paths: string[] }[];
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]!.paths).toEqual([tree]);
    const out = join(t, "restored");
    await steps.run("restore", () => run(["restore", "latest", "--target", out]));
    // restic restores under the target at the source's absolute path.
    expect(await hashTree(join(out, tree))).toEqual(treeHashes);
    expect(steps.putModes()).toEqual(["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]);
    const check = await steps.run("check", () => run(["check", "--read-data"]));
    expect(check.stdout).toContain("no errors were found");
    // The repository is plain files in the bucket folder.
    const stored = await filesOnDisk(join(http.root, "restic", "repo"));
    expect(stored.has("config")).toBe(true);
    expect([...stored.keys()].filter((file) => file.startsWith("keys/"))).toHaveLength(1);
    expect([...stored.keys()].filter((file) => file.startsWith("snapshots/"))).toHaveLength(1);
    expect([...stored.keys()].filter((file) => file.startsWith("data/")).length).toBeGreaterThan(0);
    await steps.finish();
  }, 120_000);

  // --- awscli ------------------------------------------------------------------------------------

  // 20 parallel requests (the default is 10), as `aws configure set default.s3.max_concurrent_requests 20` sets.
  const awsCliHere = (t: string, signal: AbortSignal) => awsCli(t, signal, { maxConcurrentRequests: 20 });

  it("awscli over HTTPS (--ca-bundle): mb, multipart and single cp, ls, head-object, cp down, sync, rm", async ({ signal }) => {
    const t = scratch("aws");
    const steps = new Steps("awscli https", [https]);
    const aws = awsCliHere(t, signal);
    const large = join(t, "large.bin");
    await writeRandomFile(large, 20 * MiB);
    const small = join(t, "small.txt");
    writeFileSync(small, "hello from awscli\n");

    await steps.run("mb", () => aws(https, ["s3", "mb", "s3://aws-cli"]));
    // 20 MiB is over the 8 MiB multipart threshold: three parts of 8, 8 and 4 MiB.
    await steps.run("cp large", () => aws(https, ["s3", "cp", large, "s3://aws-cli/dir/large.bin"]));
    await steps.run("cp small", () => aws(https, ["s3", "cp", small, "s3://aws-cli/dir/a small+file.txt"]));
    const ls = await steps.run("ls", () => aws(https, ["s3", "ls", "s3://aws-cli/dir/"]));
    const listed = ls.stdout
      .trim()
      .split("\n")
      .map((line) => /^\S+ \S+\s+(\d+) (.+)$/.exec(line)?.slice(1));
    expect(listed).toEqual([
      ["18", "a small+file.txt"],
      [String(20 * MiB), "large.bin"],
    ]);

    const largeData = readFileSync(large);
    const partMd5s = [0, 1, 2].map((i) => createHash("md5").update(largeData.subarray(i * 8 * MiB, (i + 1) * 8 * MiB)).digest());
    const head = JSON.parse((await steps.run("head", () => aws(https, ["s3api", "head-object", "--bucket", "aws-cli", "--key", "dir/large.bin"]))).stdout) as Record<string, unknown>;
    expect(head).toMatchObject({ ContentLength: 20 * MiB, ETag: `"${md5(Buffer.concat(partMd5s))}-3"` });
    const headSmall = JSON.parse((await steps.run("head small", () => aws(https, ["s3api", "head-object", "--bucket", "aws-cli", "--key", "dir/a small+file.txt"]))).stdout) as Record<
      string,
      unknown
    >;
    expect(headSmall).toMatchObject({ ContentLength: 18, ETag: `"${md5(readFileSync(small))}"` });
    expect(readFileSync(join(https.root, "aws-cli", "dir", "large.bin")).equals(largeData)).toBe(true);

    const down = join(t, "down");
    await steps.run("cp down", () => aws(https, ["s3", "cp", "--recursive", "s3://aws-cli/dir/", down]));
    expect(await hashTree(down)).toEqual({ "a small+file.txt": `18 ${await sha256File(small)}`, "large.bin": `${20 * MiB} ${await sha256File(large)}` });

    // sync: ~300 keys with odd names, up and back down.
    await steps.run("sync up", () => aws(https, ["s3", "sync", tree, "s3://aws-cli/tree/"]));
    const synced = join(t, "synced");
    await steps.run("sync down", () => aws(https, ["s3", "sync", "s3://aws-cli/tree/", synced]));
    expect(await hashTree(synced, { filesOnly: true })).toEqual(await hashTree(tree, { filesOnly: true }));

    await steps.run("rm", () => aws(https, ["s3", "rm", "--recursive", "s3://aws-cli/"]));
    // Before DeleteBucket, which takes the bucket's metadata records with it.
    await steps.checkpoint("after s3 rm");
    const left = JSON.parse((await steps.run("list", () => aws(https, ["s3api", "list-objects-v2", "--bucket", "aws-cli"]))).stdout || "{}") as { KeyCount?: number };
    expect(left.KeyCount ?? 0).toBe(0);
    await steps.run("rb", () => aws(https, ["s3", "rb", "s3://aws-cli"]));
    await steps.finish();
  }, 150_000);

  it("awscli over HTTP (signed payload hashes): multipart cp up and down", async ({ signal }) => {
    const t = scratch("aws-http");
    const steps = new Steps("awscli http", [http]);
    const aws = awsCliHere(t, signal);
    const large = join(t, "large.bin");
    await writeRandomFile(large, 12 * MiB);
    await steps.run("mb", () => aws(http, ["s3", "mb", "s3://aws-cli-http"]));
    await steps.run("cp up", () => aws(http, ["s3", "cp", large, "s3://aws-cli-http/large.bin"]));
    await steps.run("cp down", () => aws(http, ["s3", "cp", "s3://aws-cli-http/large.bin", join(t, "back.bin")]));
    // botocore signs the SHA-256 of every body over plain HTTP (CreateBucket, the two parts of 8 + 4 MiB, Complete).
    expect(steps.putModes()).toEqual(["sha256"]);
    expect(steps.requests.filter((r) => r.method === "PUT" && /[?&]partNumber=/.test(r.url))).toHaveLength(2);
    expect(await sha256File(join(t, "back.bin"))).toBe(await sha256File(large));
    expect(await sha256File(join(http.root, "aws-cli-http", "large.bin"))).toBe(await sha256File(large));
    await steps.finish();
  }, 120_000);

  // --- s3cmd -------------------------------------------------------------------------------------

  /** s3cmd with a config for the HTTP server (path style: host_bucket without %(bucket)s). */
  function s3cmdCli(t: string, signal: AbortSignal) {
    const s3cmd = s3cmdTool();
    const config = join(t, "s3cfg");
    writeFileSync(
      config,
      [
        "[default]",
        `access_key = ${ACCESS_KEY}`,
        `secret_key = ${SECRET_KEY}`,
        `host_base = ${http.host}`,
        `host_bucket = ${http.host}`,
        "use_https = False",
        "signature_v2 = False",
        "bucket_location = us-east-1",
        "",
      ].join("\n"),
    );
    const env: RunOptions["env"] = { HOME: t, AWS_CA_BUNDLE: undefined, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined };
    return (args: string[]) => runToolOk(s3cmd, ["-c", config, ...args], { env, signal, timeoutMs: 100_000 });
  }

  it("s3cmd over HTTP: multipart put (5 MiB chunks), ls, get, del; sync a tree up, del --recursive (DeleteObjects)", async ({ signal }) => {
    const t = scratch("s3cmd");
    const steps = new Steps("s3cmd http", [http]);
    const run = s3cmdCli(t, signal);
    const large = join(t, "large.bin");
    await writeRandomFile(large, 12 * MiB);
    const small = join(t, "small file.txt");
    writeFileSync(small, "hello from s3cmd\n");

    await steps.run("put large", () => run(["put", "--multipart-chunk-size-mb=5", large, "s3://s3cmd/up/large.bin"]));
    expect(steps.requests.filter((r) => r.method === "PUT" && /[?&]partNumber=/.test(r.url))).toHaveLength(3);
    await steps.run("put small", () => run(["put", small, "s3://s3cmd/up/small file.txt"]));
    const ls = await steps.run("ls", () => run(["ls", "s3://s3cmd/up/"]));
    const listed = ls.stdout
      .trim()
      .split("\n")
      .map((line) => /^\S+ \S+\s+(\d+)\s+(s3:\/\/.+)$/.exec(line)?.slice(1));
    expect(listed).toEqual([
      [String(12 * MiB), "s3://s3cmd/up/large.bin"],
      ["17", "s3://s3cmd/up/small file.txt"],
    ]);
    expect(await sha256File(join(http.root, "s3cmd", "up", "large.bin"))).toBe(await sha256File(large));

    // get checks the download against the ETag, or for a multipart object the MD5 s3cmd stored in
    // x-amz-meta-s3cmd-attrs, and warns on stderr when they differ.
    const getLarge = await steps.run("get large", () => run(["get", "--force", "s3://s3cmd/up/large.bin", join(t, "large.back")]));
    const getSmall = await steps.run("get small", () => run(["get", "--force", "s3://s3cmd/up/small file.txt", join(t, "small.back")]));
    expect(getLarge.stderr + getSmall.stderr).not.toMatch(/WARNING|ERROR/);
    expect(await sha256File(join(t, "large.back"))).toBe(await sha256File(large));
    expect(readFileSync(join(t, "small.back"), "utf8")).toBe("hello from s3cmd\n");

    await steps.run("del", () => run(["del", "s3://s3cmd/up/large.bin", "s3://s3cmd/up/small file.txt"]));
    const empty = await steps.run("ls empty", () => run(["ls", "s3://s3cmd/up/"]));
    expect(empty.stdout.trim()).toBe("");

    // The ~300-file tree with odd names up, every key listed with its size, then deleted in batches.
    await steps.run("sync up", () => run(["sync", `${tree}/`, "s3://s3cmd/tree/"]));
    const lsr = await steps.run("ls -r", () => run(["ls", "--recursive", "s3://s3cmd/tree/"]));
    const sizes: Record<string, number> = {};
    for (const line of lsr.stdout.trim().split("\n")) {
      const match = /^\S+ \S+\s+(\d+)\s+s3:\/\/s3cmd\/tree\/(.+)$/.exec(line);
      expect(match, line).not.toBeNull();
      sizes[match![2]!] = Number(match![1]);
    }
    expect(sizes).toEqual(await treeSizes(tree));
    await steps.run("del -r", () => run(["del", "--recursive", "--force", "s3://s3cmd/tree/"]));
    expect(steps.requests.filter((r) => r.method === "POST" && /[?&]delete(=|&|$)/.test(r.url)).length).toBeGreaterThan(0);
    expect(await filesOnDisk(join(http.root, "s3cmd"))).toEqual(new Map());
    await steps.finish();
  }, 120_000);

  it("s3cmd over HTTP: sync a tree down (reads the ETag of every listed key)", async ({ signal }) => {
    const t = scratch("s3cmd-sync");
    const steps = new Steps("s3cmd sync down", [http]);
    const run = s3cmdCli(t, signal);
    await steps.run("sync up", () => run(["sync", `${tree}/`, "s3://s3cmd/sync/"]));
    const synced = join(t, "synced");
    mkdirSync(synced);
    // s3cmd builds its remote file list from ListObjects and takes every entry's ETag as its MD5.
    await steps.run("sync down", () => run(["sync", "s3://s3cmd/sync/", `${synced}/`]));
    expect(await hashTree(synced, { filesOnly: true })).toEqual(await hashTree(tree, { filesOnly: true }));
    await steps.run("del -r", () => run(["del", "--recursive", "--force", "s3://s3cmd/sync/"]));
    await steps.finish();
  }, 120_000);

  // --- rclone ------------------------------------------------------------------------------------

  it("rclone over HTTP: copy a tree up, lsl, check, copy back byte for byte", async ({ signal }) => {
    const rclone = rcloneTool();
    const t = scratch("rclone");
    const steps = new Steps("rclone http", [http]);
    const env: RunOptions["env"] = {
      HOME: t,
      RCLONE_CONFIG_S3T_TYPE: "s3",
      RCLONE_CONFIG_S3T_PROVIDER: "Other",
      RCLONE_CONFIG_S3T_ENDPOINT: http.url,
      RCLONE_CONFIG_S3T_ACCESS_KEY_ID: ACCESS_KEY,
      RCLONE_CONFIG_S3T_SECRET_ACCESS_KEY: SECRET_KEY,
      RCLONE_CONFIG_S3T_FORCE_PATH_STYLE: "true",
    };
    const run = (args: string[]) => runToolOk(rclone, args, { env, signal, timeoutMs: 100_000 });
    await steps.run("copy up", () => run(["copy", tree, "s3t:rclone/rc"]));

    const lsl = await steps.run("lsl", () => run(["lsl", "s3t:rclone/rc"]));
    const listed: Record<string, number> = {};
    for (const line of lsl.stdout.trim().split("\n")) {
      const match = /^\s*(\d+) \S+ \S+ (.+)$/.exec(line);
      expect(match, line).not.toBeNull();
      listed[match![2]!] = Number(match![1]);
    }
    expect(listed).toEqual(await treeSizes(tree));

    const check = await steps.run("check", () => run(["check", tree, "s3t:rclone/rc"]));
    // Hashes compared too (rclone gets the MD5s by HEAD: listings carry no ETag), not sizes only.
    expect(check.stderr).toMatch(/: 0 differences found/);
    expect(check.stderr).toMatch(new RegExp(`: ${Object.keys(await treeSizes(tree)).length} matching files`));
    expect(check.stderr).not.toMatch(/could not be checked|hash.*(unsupported|not supported)/i);

    const back = join(t, "back");
    await steps.run("copy down", () => run(["copy", "s3t:rclone/rc", back]));
    expect(await hashTree(back, { filesOnly: true })).toEqual(await hashTree(tree, { filesOnly: true }));
    await steps.finish();
  }, 120_000);
});
