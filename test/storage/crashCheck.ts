/**
 * The crash test's shared vocabulary and its checker.
 *
 * The writer child (crashWriter.ts) and the checker derive everything from (seed, key, version):
 * which key an operation touches, whether it is a put or a delete, the body's size and bytes, and
 * whether the put is deliberately sent with a wrong Content-Length/Content-MD5 (it must fail and
 * leave the previous object untouched). The child logs each step to stdout with a synchronous
 * write, so after a SIGKILL the checker knows exactly which operations were started and which
 * were acknowledged, and can regenerate every body to compare with what is on disk.
 */
import { createCipheriv, createHash } from "node:crypto";
import { lstat, readdir, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { StorageError } from "../../src/storage/errors.js";
import { INTERNAL_DIR } from "../../src/storage/layout.js";
import { ObjectStore, type OpenObject } from "../../src/storage/store.js";

export const CRASH_BUCKET = "crash-test";

/** Flat and nested keys; two share the directory `backups/b1/`, so deletes prune shared parents. */
export const CRASH_KEYS = [
  "a.bin",
  "backups/b1/b1.tar.gz",
  "backups/b1/b1-logs.json.gz",
  "backups/b2/volumes/data.img",
  "restic/data/3f/3f0a9c5e77d1",
  "z",
] as const;

const MiB = 1024 * 1024;
/** Sizes on and around the writer's 1 MiB staging-buffer boundaries. */
const BOUNDARY_SIZES = [MiB, 2 * MiB, 3 * MiB, MiB - 1, MiB + 1, 2 * MiB + 1];
const MAX_CHUNK = 300 * 1024;
const ZEROS = Buffer.alloc(MAX_CHUNK);

function digest(...parts: Array<string | number>): Buffer {
  return createHash("sha256").update(parts.join("\0")).digest();
}

export type OpKind = "put" | "delete";

/** The operation the writer performs as its `version`-th step: about one in eight is a delete. */
export function operation(seed: string, version: number): { key: string; kind: OpKind } {
  const d = digest(seed, "op", version);
  return { key: CRASH_KEYS[d[0]! % CRASH_KEYS.length]!, kind: d[1]! < 32 ? "delete" : "put" };
}

/** 0 B to 3 MiB: empty and tiny bodies, exact MiB boundaries ±1, and uniform sizes in between. */
export function bodySize(seed: string, key: string, version: number): number {
  const d = digest(seed, "size", key, version);
  const pick = d[0]!;
  const r = d.readUInt32BE(4);
  if (pick < 20) return 0;
  if (pick < 40) return 1 + (r % 100);
  if (pick < 90) return BOUNDARY_SIZES[r % BOUNDARY_SIZES.length]!;
  return r % (3 * MiB + 1);
}

/** How a deliberately bad put lies about its body (about one put in twelve), or undefined. */
export function sabotage(seed: string, key: string, version: number): "size" | "md5" | undefined {
  const d = digest(seed, "sabotage", key, version);
  if (d[0]! >= 21) return undefined;
  return d[1]! % 2 === 0 ? "size" : "md5";
}

/** The body as chunks of irregular sizes (1 B to 300 KiB): AES-256-CTR keystream, so every version is unique. */
export function* bodyChunks(seed: string, key: string, version: number, size = bodySize(seed, key, version)): Generator<Buffer> {
  const d = digest(seed, "body", key, version);
  const cipher = createCipheriv("aes-256-ctr", d, Buffer.alloc(16));
  let state = d.readUInt32BE(0) | 1;
  for (let done = 0; done < size; ) {
    // xorshift32 for chunk sizes; mostly large chunks, sometimes tiny ones.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const r = state >>> 0;
    const n = Math.min(size - done, r % 4 === 0 ? 1 + (r % 4096) : 1 + (r % MAX_CHUNK));
    yield cipher.update(ZEROS.subarray(0, n));
    done += n;
  }
}

export function bodyBytes(seed: string, key: string, version: number, size?: number): Buffer {
  return Buffer.concat([...bodyChunks(seed, key, version, size)]);
}

export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** What is under a key: a version's body, or nothing. */
export type KeyState = number | null;

interface Op {
  kind: OpKind;
  version: number;
  /** "acked": the store said done; "failed": a sabotaged put was rejected; undefined: killed before the outcome. */
  outcome?: "acked" | "failed";
}

export interface CrashCheckResult {
  violations: string[];
  /** Puts and deletes the store acknowledged. */
  acknowledged: number;
  /** The operation in flight at the kill: the child's last line was its START/DEL-START, without an outcome. */
  killedDuring: OpKind | undefined;
  /** What the store holds after the restart, per key: a version, or null (absent). */
  observed: Map<string, KeyState>;
}

/**
 * Parses the child's log into per-key operations; protocol errors (an outcome without its start, a
 * START while another operation is in flight, a wrong MD5 in an ACK, an ERROR line) are violations.
 */
function parseLog(seed: string, lines: readonly string[], violations: string[]): { ops: Map<string, Op[]>; acknowledged: number; inFlight: OpKind | undefined } {
  const ops = new Map<string, Op[]>(CRASH_KEYS.map((k) => [k, []]));
  let current: { key: string; op: Op } | undefined;
  let acknowledged = 0;
  const fail = (line: string, why: string) => violations.push(`child log: ${why}: "${line}"`);
  for (const line of lines) {
    if (line === "") continue;
    const [word, key = "", versionText = "", ...rest] = line.split(" ");
    const version = Number(versionText);
    if (word === "READY") continue;
    if (word === "ERROR") {
      fail(line, "the writer reported an error");
      continue;
    }
    if (!ops.has(key) || !Number.isSafeInteger(version)) {
      fail(line, "unexpected line");
      continue;
    }
    const expected = operation(seed, version);
    if (expected.key !== key) fail(line, `version ${version} should touch key ${expected.key}`);
    if (word === "START" || word === "DEL-START") {
      if (current && current.op.outcome === undefined) fail(line, `started while ${current.key} v${current.op.version} had no outcome`);
      const op: Op = { kind: word === "START" ? "put" : "delete", version };
      if (op.kind !== expected.kind) fail(line, `version ${version} should be a ${expected.kind}`);
      ops.get(key)!.push(op);
      current = { key, op };
      continue;
    }
    if (!current || current.key !== key || current.op.version !== version || current.op.outcome !== undefined) {
      fail(line, "an outcome without its start");
      continue;
    }
    const { op } = current;
    if (word === "ACK" && op.kind === "put") {
      op.outcome = "acked";
      acknowledged++;
      const body = bodyBytes(seed, key, version);
      if (rest[0] !== md5Hex(body) || Number(rest[1]) !== body.length) fail(line, `the store acknowledged md5 ${rest[0]} size ${rest[1]}, the body has md5 ${md5Hex(body)} size ${body.length}`);
      if (sabotage(seed, key, version)) fail(line, `a put with a wrong ${sabotage(seed, key, version)} was acknowledged`);
    } else if (word === "FAIL" && op.kind === "put") {
      op.outcome = "failed";
      const how = sabotage(seed, key, version);
      const code = how === "size" ? "IncompleteBody" : how === "md5" ? "BadDigest" : undefined;
      if (rest[0] !== code) fail(line, `expected ${code ?? "success"}`);
    } else if (word === "DEL-ACK" && op.kind === "delete") {
      op.outcome = "acked";
      acknowledged++;
    } else {
      fail(line, "unexpected line");
    }
  }
  return { ops, acknowledged, inFlight: current?.op.outcome === undefined ? current?.op.kind : undefined };
}

/**
 * The states a key may be in after the restart: the state left by its operations with a known
 * outcome, plus the result of an operation in flight at the kill (a put that was renamed into
 * place just before the kill, or a delete that had removed the file).
 */
function allowedStates(seed: string, key: string, initial: KeyState, ops: readonly Op[]): KeyState[] {
  let state = initial;
  const allowed: KeyState[] = [];
  for (const op of ops) {
    if (op.outcome === "acked") state = op.kind === "put" ? op.version : null;
    else if (op.outcome === undefined) {
      if (op.kind === "delete") allowed.push(null);
      else if (!sabotage(seed, key, op.version)) allowed.push(op.version);
    }
  }
  return [state, ...allowed];
}

function describe(state: KeyState): string {
  return state === null ? "absent" : `v${state}`;
}

/**
 * Reopens the store at `root` after the writer was killed and checks everything the issue asks:
 * no temp files survive start-up, every key holds exactly one allowed version (never partial,
 * never older than the last acknowledged write), with metadata whose MD5 and size match the bytes,
 * deleted keys stay deleted, and the listing shows exactly the keys that exist. Violations are
 * returned, not thrown. `initial` is what the keys held before this child started (all absent for
 * a fresh root).
 */
export async function checkCrash(root: string, seed: string, lines: readonly string[], initial: ReadonlyMap<string, KeyState> = new Map()): Promise<CrashCheckResult> {
  const violations: string[] = [];
  const { ops, acknowledged, inFlight } = parseLog(seed, lines, violations);
  const observed = new Map<string, KeyState>();
  const tmp = join(root, INTERNAL_DIR, "tmp");

  let store: ObjectStore;
  try {
    store = await ObjectStore.open(root, { durability: "full" });
  } catch (err) {
    violations.push(`the store does not reopen: ${String(err)}`);
    return { violations, acknowledged, killedDuring: inFlight, observed };
  }
  try {
    // 1. Start-up reclaimed every temp file: only this instance's own, empty folder is left.
    const own = `${hostname()}-${process.pid}-`;
    const leftovers = await readdir(tmp);
    const foreign = leftovers.filter((name) => !name.startsWith(own));
    if (foreign.length > 0 || leftovers.length !== 1) violations.push(`temp folders after start-up: ${JSON.stringify(leftovers)} (expected only this instance's)`);
    for (const name of leftovers.filter((n) => n.startsWith(own))) {
      const inside = await readdir(join(tmp, name));
      if (inside.length > 0) violations.push(`the new instance's temp folder is not empty: ${JSON.stringify(inside)}`);
    }

    // 2. Every key holds one allowed version, byte for byte, with matching metadata.
    const existing = new Map<string, number>();
    for (const key of CRASH_KEYS) {
      const allowed = allowedStates(seed, key, initial.get(key) ?? null, ops.get(key) ?? []);
      const where = `key ${key} (allowed: ${allowed.map(describe).join(", ")})`;
      const path = join(root, CRASH_BUCKET, ...key.split("/"));
      const stats = await lstat(path).catch(() => undefined);
      if (!stats) {
        observed.set(key, null);
        if (!allowed.includes(null)) violations.push(`${where}: the object is missing`);
        const result = await store.head(CRASH_BUCKET, key).then(
          () => "found",
          (err: unknown) => (err instanceof StorageError ? err.code : String(err)),
        );
        if (result !== "NoSuchKey") violations.push(`${where}: no file, but head() says ${result}`);
        continue;
      }
      if (!stats.isFile()) {
        violations.push(`${where}: the path is not a regular file`);
        continue;
      }
      const bytes = await readFile(path);
      existing.set(key, bytes.length);
      const version = allowed.find((v) => v !== null && bodySize(seed, key, v) === bytes.length && bodyBytes(seed, key, v).equals(bytes));
      if (version === undefined || version === null) {
        violations.push(`${where}: the file (${bytes.length} bytes, md5 ${md5Hex(bytes)}) is ${identify(seed, key, ops.get(key) ?? [], bytes)}`);
        observed.set(key, null);
      } else {
        observed.set(key, version);
      }
      const md5 = md5Hex(bytes);
      let object: OpenObject;
      try {
        object = await store.open(CRASH_BUCKET, key);
      } catch (err) {
        violations.push(`${where}: store.open failed: ${String(err)}`);
        continue;
      }
      const { info } = object;
      const chunks: Buffer[] = [];
      for await (const chunk of object.stream()) chunks.push(chunk as Buffer);
      const streamed = Buffer.concat(chunks);
      if (info.etag === undefined) violations.push(`${where}: data without metadata (info.etag is undefined)`);
      else if (info.etag !== md5) violations.push(`${where}: metadata ETag ${info.etag} but the bytes have md5 ${md5}`);
      if (info.size !== bytes.length) violations.push(`${where}: metadata size ${info.size} but the file has ${bytes.length} bytes`);
      if (!streamed.equals(bytes)) violations.push(`${where}: the store streamed other bytes than the file holds`);
    }

    // 3. The listing shows exactly the objects that exist, with their sizes.
    const listing = await store.list(CRASH_BUCKET, { maxKeys: 1000 });
    const listed = new Map(listing.objects.map((o) => [o.key, o.size]));
    const show = (m: Map<string, number>) => JSON.stringify([...m].sort());
    if (show(listed) !== show(existing) || listing.isTruncated) violations.push(`listing ${show(listed)} but the objects are ${show(existing)}`);

    // 4. Metadata records are written atomically: none is partial, whatever the kill interrupted.
    for (const path of await metadataFiles(join(root, INTERNAL_DIR, "meta"))) {
      const text = await readFile(path, "utf8");
      try {
        JSON.parse(text);
      } catch {
        violations.push(`partial metadata record ${path}: ${JSON.stringify(text.slice(0, 80))}`);
      }
    }
  } catch (err) {
    violations.push(`checking failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await store.close();
  }
  const after = await readdir(tmp).catch((err: unknown) => [String(err)]);
  if (after.length > 0) violations.push(`temp entries after store.close(): ${JSON.stringify(after)}`);
  return { violations, acknowledged, killedDuring: inFlight, observed };
}

/** For a failure message: which version of the key these bytes are, if any, or a partial/unknown body. */
function identify(seed: string, key: string, ops: readonly Op[], bytes: Buffer): string {
  for (const op of ops) {
    if (op.kind !== "put") continue;
    const body = bodyBytes(seed, key, op.version);
    if (body.equals(bytes)) return `v${op.version}, which is not allowed here`;
    if (bytes.length < body.length && body.subarray(0, bytes.length).equals(bytes)) return `a partial v${op.version} (${body.length} bytes in full)`;
  }
  return "no version the writer ever started";
}

async function metadataFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await metadataFiles(path)));
    else files.push(path);
  }
  return files;
}
