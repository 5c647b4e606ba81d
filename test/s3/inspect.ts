import { createHash } from "node:crypto";
import { lstat, readdir } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { expect } from "vitest";
import type { RawReply, RawRequest } from "./signer.js";

/**
 * Test helpers that look behind the S3 endpoint: what the store root holds on disk (so a test can
 * prove a refused request left nothing behind), and a raw HTTP/1.1 client on a plain socket for
 * requests no HTTP library sends (truncated bodies, stalls, `Expect: 100-continue` handshakes,
 * refusals that arrive while the body is still being written).
 */

// --- the store root on disk ------------------------------------------------------------------

/** The store's internal folder (src/storage/layout.ts INTERNAL_DIR). */
const INTERNAL = ".app-snapshots";

export interface StoreListing {
  /** Bucket folder → the files in it (paths with '/', sorted); an empty folder shows as `dir/`, a symlink as `name@`. */
  buckets: Record<string, string[]>;
  /** Open multipart uploads (buckets of the store under `.app-snapshots/uploads`): upload id → files. */
  uploads: Record<string, string[]>;
  /** Everything inside a temp folder (`.app-snapshots/tmp/<instance>/…`, also the multipart store's), relative to the root. */
  temp: string[];
  /**
   * Anything else that should not be there, relative to the root: files at the top level, unknown
   * entries in the internal folder, metadata records that describe no existing object.
   */
  strays: string[];
}

interface Walked {
  files: string[];
  /** name → inode, for matching metadata records. */
  inodes: Map<string, bigint>;
}

async function walk(dir: string, prefix = "", out: Walked = { files: [], inodes: new Map() }): Promise<Walked> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.length === 0 && prefix !== "") out.files.push(prefix);
  for (const entry of entries) {
    const rel = `${prefix}${entry.name}`;
    if (entry.isDirectory()) await walk(join(dir, entry.name), `${rel}/`, out);
    else if (entry.isSymbolicLink()) out.files.push(`${rel}@`);
    else {
      out.files.push(rel);
      out.inodes.set(rel, (await lstat(join(dir, entry.name), { bigint: true })).ino);
    }
  }
  return out;
}

async function entriesOf(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * Walks a store root: buckets and their files, temp folders, and the metadata records, which are
 * ignored when they belong to an existing object (`meta/<bucket>/<xx>/<sha256(key)>.<inode>.json`)
 * and reported as strays otherwise. The multipart store under `.app-snapshots/uploads` is walked
 * the same way; its buckets are the open uploads.
 */
export async function storeListing(root: string, shown = ""): Promise<StoreListing> {
  const listing: StoreListing = { buckets: {}, uploads: {}, temp: [], strays: [] };
  const inodes = new Map<string, Map<string, bigint>>();
  for (const entry of (await readdir(root, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name === INTERNAL) continue;
    if (!entry.isDirectory()) {
      listing.strays.push(`${shown}${entry.name}`);
      continue;
    }
    const walked = await walk(join(root, entry.name));
    listing.buckets[entry.name] = walked.files.sort();
    inodes.set(entry.name, walked.inodes);
  }

  const internal = join(root, INTERNAL);
  for (const name of await entriesOf(internal)) {
    const path = join(internal, name);
    if (name === "tmp") {
      for (const instance of await entriesOf(path)) {
        const stats = await lstat(join(path, instance));
        if (!stats.isDirectory()) {
          listing.temp.push(`${shown}${INTERNAL}/tmp/${instance}`);
          continue;
        }
        for (const file of (await walk(join(path, instance))).files) listing.temp.push(`${shown}${INTERNAL}/tmp/${instance}/${file}`);
      }
    } else if (name === "meta") {
      for (const bucket of await entriesOf(path)) {
        const objects = inodes.get(bucket);
        const byDigest = new Map<string, bigint>();
        for (const [key, ino] of objects ?? []) byDigest.set(createHash("sha256").update(key).digest("hex"), ino);
        for (const shard of await entriesOf(join(path, bucket))) {
          for (const record of await entriesOf(join(path, bucket, shard))) {
            const match = /^([0-9a-f]{64})\.(\d+)\.json$/.exec(record);
            if (match && byDigest.get(match[1]!) === BigInt(match[2]!)) continue;
            listing.strays.push(`${shown}${INTERNAL}/meta/${bucket}/${shard}/${record}`);
          }
        }
      }
    } else if (name === "completed" && shown !== "") {
      // Completed multipart uploads remembered for retried Completes (src/s3/completedUploads.ts): one record
      // per upload id; anything else there (a temp file left behind) is a stray.
      for (const file of await entriesOf(path)) if (!/^[0-9a-f]{32}\.json$/.test(file)) listing.strays.push(`${shown}${INTERNAL}/completed/${file}`);
    } else if (name === "uploads" && shown === "") {
      const uploads = await storeListing(path, `${INTERNAL}/uploads/`);
      listing.uploads = uploads.buckets;
      listing.temp.push(...uploads.temp);
      listing.strays.push(...uploads.strays);
    } else {
      listing.strays.push(`${shown}${INTERNAL}/${name}`);
    }
  }
  listing.temp.sort();
  listing.strays.sort();
  return listing;
}

export interface ExpectedStore {
  /** Bucket → the keys (file paths) it must hold, exactly. */
  buckets: Record<string, Iterable<string>>;
  /** Upload id → its files (`upload.json`, `part/00001`, …); default: no open uploads. */
  uploads?: Record<string, Iterable<string>>;
}

/**
 * Asserts the root holds exactly the expected object files and uploads, that every temp folder is
 * empty, and that nothing else (stray files, orphaned metadata records) is left.
 */
export async function expectStore(root: string, expected: ExpectedStore): Promise<void> {
  const listing = await storeListing(root);
  const sorted = (record: Record<string, Iterable<string>>) => Object.fromEntries(Object.entries(record).map(([name, files]) => [name, [...files].sort()]));
  expect(listing).toEqual({ buckets: sorted(expected.buckets), uploads: sorted(expected.uploads ?? {}), temp: [], strays: [] });
}

// --- a raw HTTP/1.1 client ---------------------------------------------------------------------

export interface RawResponse extends RawReply {
  /** The status line of the final response. */
  statusLine: string;
  /** Statuses of interim (1xx) responses that came first, e.g. [100]. */
  interim: number[];
}

/** The request line and header block of a request, exactly as given (no header is added). */
export function requestHead(request: RawRequest): string {
  const lines = [`${request.method} ${request.target} HTTP/1.1`, ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`)];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

export function bodyOf(request: RawRequest): Buffer {
  return Buffer.concat(Array.isArray(request.body) ? request.body : request.body ? [request.body] : []);
}

/** One TCP connection to the server, written and read by hand. */
export class RawConnection {
  private data = Buffer.alloc(0);
  private wake: Array<() => void> = [];
  closed = false;
  /** The socket's error, if any (ECONNRESET, EPIPE when the server is gone). */
  error: Error | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
      this.notify();
    });
    socket.on("error", (err) => {
      this.error = err;
      this.notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
  }

  static connect(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawConnection(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Everything received so far. */
  get received(): Buffer {
    return this.data;
  }

  /** Writes and waits until it is flushed; false when the connection is already gone (the server refused and closed). */
  write(data: Buffer | string): Promise<boolean> {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(data, (err) => resolve(!err)));
  }

  /** Half-closes: no more request bytes. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The first line the server sent (e.g. `HTTP/1.1 100 Continue`). */
  firstLine(timeoutMs = 10_000): Promise<string> {
    return this.until(
      () => {
        const end = this.data.indexOf("\r\n");
        return end < 0 ? undefined : this.data.subarray(0, end).toString("latin1");
      },
      timeoutMs,
      "a status line",
    );
  }

  /** The first final (non-1xx) response; HEAD responses have no body. */
  response(options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    return this.until(() => parseResponse(this.data, options.head ?? false, this.closed), options.timeoutMs ?? 10_000, "a complete response");
  }

  /** Resolves true once the server has closed the connection, false if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    try {
      await this.until(() => (this.closed ? true : undefined), timeoutMs, "the connection to close");
      return true;
    } catch {
      return false;
    }
  }

  private notify(): void {
    for (const wake of this.wake.splice(0)) wake();
  }

  private async until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (this.closed) throw new Error(`the connection closed before ${what} arrived (received ${JSON.stringify(this.data.toString("latin1").slice(0, 300))})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms (received ${JSON.stringify(this.data.toString("latin1").slice(0, 300))})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** A complete final response at the start of `data`, or undefined while more bytes are needed. */
export function parseResponse(data: Buffer, head: boolean, closed: boolean): RawResponse | undefined {
  const interim: number[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end < 0) return undefined;
    const lines = data.subarray(at, end).toString("latin1").split("\r\n");
    const statusLine = lines[0]!;
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!match) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine.slice(0, 100))}`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    at = end + 4;
    if (status < 200) {
      interim.push(status);
      continue;
    }
    let body: Buffer;
    if (head || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
      const decoded = decodeChunked(data.subarray(at));
      if (!decoded) return undefined;
      body = decoded;
    } else if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (data.length - at < length) return undefined;
      body = data.subarray(at, at + length);
    } else {
      if (!closed) return undefined;
      body = data.subarray(at);
    }
    const text = body.toString("utf8");
    return { status, statusLine, interim, headers, body, text, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] };
  }
}

function decodeChunked(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf("\r\n", at);
    if (end < 0) return undefined;
    const size = parseInt(data.subarray(at, end).toString("latin1"), 16);
    at = end + 2;
    if (size === 0) return data.indexOf("\r\n", at) < 0 ? undefined : Buffer.concat(parts);
    if (data.length < at + size + 2) return undefined;
    parts.push(data.subarray(at, at + size));
    at += size + 2;
  }
}

/**
 * Sends a request on a fresh connection and reads the response. Write errors are ignored: a server
 * may answer (and close) before the whole body is sent, and that answer is what the test wants.
 */
export async function rawSend(port: number, request: RawRequest, options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
  const connection = await RawConnection.connect(port);
  try {
    const headers = Object.keys(request.headers).some((name) => name.toLowerCase() === "connection") ? request.headers : { ...request.headers, connection: "close" };
    void connection.write(Buffer.concat([Buffer.from(requestHead({ ...request, headers }), "latin1"), bodyOf(request)]));
    return await connection.response({ head: options.head ?? request.method === "HEAD", timeoutMs: options.timeoutMs });
  } finally {
    connection.destroy();
  }
}
