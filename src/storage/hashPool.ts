import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

/** Digests the store computes while an object streams in (the S3 checksum algorithms plus MD5). */
export type HashAlgorithm = "md5" | "sha1" | "sha256" | "crc32" | "crc32c" | "crc64nvme";

/** Where the worker loads the CRC32C and CRC64NVME implementations from (absolute, so cwd does not matter). */
const require = createRequire(import.meta.url);
const WORKER_MODULES = { crc32c: require.resolve("@aws-crypto/crc32c"), crc64nvme: require.resolve("@aws-sdk/crc64-nvme") };

/**
 * The worker's whole program. It is evaluated from a string so the same code runs from the
 * compiled output and under the test runner, with no second entry file to ship.
 * Messages per session arrive in order on one port, so updates stay in stream order.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const crypto = require("node:crypto");
const zlib = require("node:zlib");
const sessions = new Map();
function uint32(n) { const out = Buffer.alloc(4); out.writeUInt32BE(n >>> 0); return out; }
function start(algorithms) {
  return algorithms.map((name) => {
    if (name === "crc32") return { name, crc: 0, update(b) { this.crc = zlib.crc32(b, this.crc); }, digest() { return uint32(this.crc); } };
    if (name === "crc32c") { const c = new (require(workerData.crc32c).Crc32c)(); return { name, update(b) { c.update(b); }, digest() { return uint32(c.digest()); } }; }
    if (name === "crc64nvme") { const c = new (require(workerData.crc64nvme).Crc64Nvme)(); return { name, update(b) { c.update(b); }, digest() { return c.digest().then((d) => Buffer.from(d)); } }; }
    const hash = crypto.createHash(name);
    return { name, update(b) { hash.update(b); }, digest() { return hash.digest(); } };
  });
}
function fail(id, err) {
  sessions.delete(id);
  parentPort.postMessage({ id, op: "error", message: String(err && err.message || err) });
}
parentPort.on("message", (m) => {
  try {
    if (m.op === "start") sessions.set(m.id, start(m.algorithms));
    else if (m.op === "data") {
      const view = Buffer.from(m.buffer, 0, m.length);
      for (const h of sessions.get(m.id)) h.update(view);
      parentPort.postMessage({ id: m.id, op: "ack", buffer: m.buffer }, [m.buffer]);
    } else if (m.op === "end") {
      const hashes = sessions.get(m.id);
      sessions.delete(m.id);
      Promise.all(hashes.map((h) => h.digest())).then((values) => {
        const digests = {};
        hashes.forEach((h, i) => (digests[h.name] = values[i]));
        parentPort.postMessage({ id: m.id, op: "digests", digests });
      }, (err) => fail(m.id, err));
    } else if (m.op === "abort") sessions.delete(m.id);
  } catch (err) {
    fail(m.id, err);
  }
});
`;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface WorkerMessage {
  id: number;
  op: "ack" | "digests" | "error";
  buffer?: ArrayBuffer;
  digests?: Record<string, Uint8Array>;
  message?: string;
}

class HashWorker {
  readonly worker: Worker;
  /** Per session, replies in the order requests were sent. */
  readonly waiting = new Map<number, Pending[]>();
  sessions = 0;

  constructor(onExit: () => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: WORKER_MODULES });
    this.worker.unref();
    this.worker.on("message", (m: WorkerMessage) => {
      const queue = this.waiting.get(m.id);
      const next = queue?.shift();
      if (!next) return;
      if (m.op === "error") next.reject(new Error(`hashing failed: ${m.message ?? "unknown error"}`));
      else next.resolve(m.op === "ack" ? m.buffer : m.digests);
    });
    const failAll = (err: Error) => {
      for (const queue of this.waiting.values()) for (const p of queue.splice(0)) p.reject(err);
      onExit();
    };
    this.worker.on("error", failAll);
    this.worker.on("exit", (code) => failAll(new Error(`hash worker exited (code ${code})`)));
  }

  request<T>(id: number, message: object, transfer: ArrayBuffer[] = []): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const queue = this.waiting.get(id);
      if (!queue) return reject(new Error("hash session is closed"));
      queue.push({ resolve, reject });
      this.worker.postMessage(message, transfer);
    });
  }
}

/** One object's running digests, computed on a worker thread. */
export interface HashSession {
  /** Hash `length` bytes of `buffer`; it is moved to the worker and handed back when done. */
  update(buffer: ArrayBuffer, length: number): Promise<ArrayBuffer>;
  digest(): Promise<Partial<Record<HashAlgorithm, Buffer>>>;
  abort(): void;
}

/**
 * Hashing off the main thread: MD5 runs at ~0.5 GiB/s per core, so hashing on the event loop
 * would cap every upload at that rate for the whole process. Each session sticks to one worker
 * (hash state is sequential); sessions spread over one worker per core.
 */
export class HashPool {
  private readonly workers: Array<HashWorker | undefined>;
  private nextId = 1;

  constructor(size = availableParallelism()) {
    this.workers = new Array<HashWorker | undefined>(Math.max(1, size)).fill(undefined);
  }

  session(algorithms: readonly HashAlgorithm[]): HashSession {
    const index = this.leastBusy();
    const worker = (this.workers[index] ??= new HashWorker(() => {
      if (this.workers[index] === worker) this.workers[index] = undefined;
    }));
    const id = this.nextId++;
    worker.waiting.set(id, []);
    worker.sessions++;
    worker.worker.postMessage({ op: "start", id, algorithms });
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      worker.sessions--;
    };
    return {
      update: (buffer, length) => worker.request<ArrayBuffer>(id, { op: "data", id, buffer, length }, [buffer]),
      digest: async () => {
        try {
          const digests = await worker.request<Record<string, Uint8Array>>(id, { op: "end", id });
          return Object.fromEntries(Object.entries(digests).map(([name, bytes]) => [name, Buffer.from(bytes)]));
        } finally {
          worker.waiting.delete(id);
          close();
        }
      },
      abort: () => {
        if (!open) return;
        worker.worker.postMessage({ op: "abort", id });
        worker.waiting.delete(id);
        close();
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.flatMap((w) => (w ? [w.worker.terminate()] : [])));
    this.workers.fill(undefined);
  }

  private leastBusy(): number {
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) {
      if ((this.workers[i]?.sessions ?? 0) < (this.workers[best]?.sessions ?? 0)) best = i;
    }
    return best;
  }
}

/** The digests node:crypto computes itself (no checksum library), cheap to run on the event loop for a small body. */
const INLINE_ALGORITHMS: ReadonlySet<HashAlgorithm> = new Set(["md5", "sha1", "sha256"]);

/** Whether `digestInline` computes all of `algorithms`. */
export function hashesInline(algorithms: Iterable<HashAlgorithm>): boolean {
  for (const algorithm of algorithms) if (!INLINE_ALGORITHMS.has(algorithm)) return false;
  return true;
}

/**
 * The digests of a small body computed on the calling thread. For a few KiB the worker's three
 * message round trips (start, data, end) cost far more than the hashing they move off the event loop.
 */
export function digestInline(bytes: Uint8Array, algorithms: Iterable<HashAlgorithm>): Partial<Record<HashAlgorithm, Buffer>> {
  const digests: Partial<Record<HashAlgorithm, Buffer>> = {};
  for (const algorithm of algorithms) digests[algorithm] = createHash(algorithm).update(bytes).digest();
  return digests;
}
