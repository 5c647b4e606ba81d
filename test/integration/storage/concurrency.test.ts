import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import type * as fsPromises from "node:fs/promises";
import { lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { StorageError } from "../../../src/storage/errors.js";
import { INTERNAL_DIR } from "../../../src/storage/layout.js";
import { ObjectStore } from "../../../src/storage/store.js";
import { bodyBytes, bodyChunks, md5Hex } from "../../storage/crashCheck.js";
import { writerScript } from "../../storage/crashTrial.js";

/**
 * The store's filesystem calls pass through, except that a test can hold one up: the races below
 * depend on timing that a stress loop hits only now and then, and are replayed here step by step.
 */
const fsHooks = vi.hoisted(() => ({
  beforeRm: undefined as ((path: string) => Promise<void>) | undefined,
  beforeReadFile: undefined as ((path: string) => Promise<void>) | undefined,
}));

vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof fsPromises>();
  return {
    ...real,
    rm: async (...args: Parameters<typeof real.rm>) => {
      await fsHooks.beforeRm?.(args[0].toString());
      return real.rm(...args);
    },
    readFile: async (...args: Parameters<typeof real.readFile>) => {
      await fsHooks.beforeReadFile?.(typeof args[0] === "object" && "fd" in args[0] ? `fd ${args[0].fd}` : args[0].toString());
      return real.readFile(...args);
    },
  };
});

/** A gate: the first call matching `when` waits until open() is called; later calls pass. */
function gate(when: (path: string) => boolean): { hook: (path: string) => Promise<void>; reached: Promise<string>; open: () => void } {
  let armed = true;
  let reached!: (path: string) => void;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const reachedPromise = new Promise<string>((resolve) => (reached = resolve));
  return {
    hook: async (path) => {
      if (!armed || !when(path)) return;
      armed = false;
      reached(path);
      await released;
    },
    reached: reachedPromise,
    open: () => release(),
  };
}

/** A metadata record (`<key digest>.<inode>.json`), whether reached by its path or through an open folder (/proc/self/fd). */
const isMetadata = (path: string) => path.includes(`/${INTERNAL_DIR}/meta/`) || /\/proc\/self\/fd\/\d+\/[0-9a-f]+\.\d+\.json$/.test(path);

const MiB = 1024 * 1024;
const BUCKET = "concurrency";
const KEY = "backups/same/key.tar.gz";
const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((file) => existsSync(file));

const roots: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

afterEach(async () => {
  fsHooks.beforeRm = undefined;
  fsHooks.beforeReadFile = undefined;
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "store-concurrency-"));
  roots.push(root);
  return root;
}

/** Streams `bytes` in irregular chunks, yielding to the event loop between them so puts interleave. */
async function* chunked(bytes: Buffer, step: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += step) {
    yield bytes.subarray(offset, offset + step);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function readAll(store: ObjectStore, key: string): Promise<{ bytes: Buffer; etag?: string; size: number } | undefined> {
  let object;
  try {
    object = await store.open(BUCKET, key);
  } catch (err) {
    if (err instanceof StorageError && err.code === "NoSuchKey") return undefined;
    throw err;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of object.stream()) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), etag: object.info.etag, size: object.info.size };
}

/**
 * Reads the key over and over until stopped; every read must be one complete allowed body (by MD5)
 * with metadata that describes exactly those bytes. Returns what it saw.
 */
function readerLoop(store: ObjectStore, allowed: () => ReadonlyMap<string, string>, problems: string[]): { stop: () => Promise<{ reads: number; seen: Set<string> }> } {
  let running = true;
  const seen = new Set<string>();
  let reads = 0;
  const loop = (async () => {
    while (running) {
      const read = await readAll(store, KEY);
      if (!read) {
        seen.add("absent");
      } else {
        reads++;
        const md5 = md5Hex(read.bytes);
        const name = allowed().get(md5);
        if (name === undefined) problems.push(`a reader saw ${read.bytes.length} bytes (md5 ${md5}) that are no complete allowed body`);
        else seen.add(name);
        if (read.etag !== md5) problems.push(`a reader got info.etag ${read.etag} for bytes with md5 ${md5} (${name ?? "unknown"})`);
        if (read.size !== read.bytes.length) problems.push(`a reader got info.size ${read.size} for ${read.bytes.length} bytes`);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { reads, seen };
    },
  };
}

/** The object now holds exactly one of `bodies`, byte for byte, with matching metadata. */
async function expectOneOf(store: ObjectStore, root: string, bodies: ReadonlyMap<string, Buffer>): Promise<string> {
  const onDisk = await readFile(join(root, BUCKET, ...KEY.split("/")));
  const winners = [...bodies].filter(([, body]) => body.equals(onDisk)).map(([name]) => name);
  expect(winners, `the object (${onDisk.length} bytes) is exactly one writer's body`).toHaveLength(1);
  const info = await store.head(BUCKET, KEY);
  expect(info.etag).toBe(md5Hex(onDisk));
  expect(info.size).toBe(onDisk.length);
  const listed = await store.list(BUCKET);
  expect(listed.objects.map((o) => [o.key, o.size])).toEqual([[KEY, onDisk.length]]);
  return winners[0]!;
}

async function tempEntries(root: string): Promise<string[]> {
  return readdir(join(root, INTERNAL_DIR, "tmp"));
}

describe("object store: concurrent writers on one key", () => {
  it("8 in-process writers per round, 20 rounds: the object is always exactly one writer's full body, and readers only ever see complete bodies", async () => {
    const root = await freshRoot();
    const store = await ObjectStore.open(root, { durability: "full" });
    const problems: string[] = [];
    const winners = new Map<string, number>();
    let totalReads = 0;
    let roundBodiesSeen = 0;
    try {
      await store.createBucket(BUCKET);
      let previous = new Map<string, string>();
      for (let round = 0; round < 20; round++) {
        // 8 distinct bodies of different sizes, 1 to ~4.2 MiB, some on 1 MiB boundaries.
        const bodies = new Map<string, Buffer>();
        for (let w = 0; w < 8; w++) {
          const size = w % 3 === 0 ? (1 + (w % 4)) * MiB : Math.round((1 + w * 0.45 + round * 0.01) * MiB) + w;
          bodies.set(`round ${round} writer ${w}`, bodyBytes(`in-process ${round}`, KEY, w, size));
        }
        expect(new Set([...bodies.values()].map((b) => b.length)).size).toBe(8);
        const current = new Map([...bodies].map(([name, body]) => [md5Hex(body), name]));
        const allowed = new Map([...previous, ...current]);
        const reader = readerLoop(store, () => allowed, problems);
        const results = await Promise.all([...bodies].map(([, body], w) => store.put(BUCKET, KEY, chunked(body, 64 * 1024 + w * 4099), { expectedSize: body.length })));
        const { reads, seen } = await reader.stop();
        results.forEach((result, w) => expect(result.etag).toBe(md5Hex([...bodies.values()][w]!)));
        totalReads += reads;
        roundBodiesSeen += [...seen].filter((name) => name.startsWith(`round ${round} `)).length;
        const winner = await expectOneOf(store, root, bodies);
        winners.set(winner.replace(/^round \d+ /, ""), (winners.get(winner.replace(/^round \d+ /, "")) ?? 0) + 1);
        previous = new Map([[md5Hex(bodies.get(winner)!), winner]]);
      }
    } finally {
      await store.close();
    }
    expect(problems.slice(0, 10)).toEqual([]);
    // The readers really ran while the writers published (they saw bodies of the round in progress).
    expect(totalReads).toBeGreaterThan(40);
    expect(roundBodiesSeen).toBeGreaterThan(10);
    expect(await tempEntries(root)).toEqual([]);
    console.log(`in-process concurrency: 20 rounds of 8 writers, ${totalReads} concurrent reads, winners ${JSON.stringify(Object.fromEntries(winners))}`);
  }, 120_000);

  it("5 writers overwriting small bodies nonstop while a deleter and 2 readers run: readers only see complete bodies with their own metadata", async () => {
    // Small bodies make writes fast, so versions are replaced and deleted while readers hold them
    // open and while other writers create temp files. The two races this exposed only now and then
    // are replayed step by step in the last tests of this file.
    const root = await freshRoot();
    const store = await ObjectStore.open(root, { durability: "full" });
    const problems: string[] = [];
    const bodies = new Map([0, 1, 777, 4096, 65_537].map((size, w) => [`writer ${w}`, bodyBytes("nonstop", KEY, w, size)]));
    const allowed = new Map([...bodies].map(([name, body]) => [md5Hex(body), name]));
    let deletes = 0;
    try {
      await store.createBucket(BUCKET);
      const reader = readerLoop(store, () => allowed, problems);
      const reader2 = readerLoop(store, () => allowed, problems);
      let writing = true;
      const deleter = (async () => {
        while (writing) {
          if (await store.delete(BUCKET, KEY)) deletes++;
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      await Promise.all(
        [...bodies.values()].map(async (body) => {
          for (let i = 0; i < 150; i++) expect((await store.put(BUCKET, KEY, chunked(body, MiB))).etag).toBe(md5Hex(body));
        }),
      );
      writing = false;
      await deleter;
      const reads = [await reader.stop(), await reader2.stop()];
      expect(reads[0]!.reads + reads[1]!.reads).toBeGreaterThan(100);
      expect(deletes).toBeGreaterThan(5);
      // The last write wins unless the deleter came after it.
      await store.put(BUCKET, KEY, chunked(bodies.get("writer 3")!, MiB));
      expect(await expectOneOf(store, root, bodies)).toBe("writer 3");
    } finally {
      await store.close();
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(await tempEntries(root)).toEqual([]);
  }, 120_000);

  it("4 writer processes on a shared root, 3 rounds of 8 puts each: the object is always exactly one writer's full body", async () => {
    const script = writerScript();
    const root = await freshRoot();
    const store = await ObjectStore.open(root, { durability: "full", shared: true });
    const problems: string[] = [];
    let totalReads = 0;
    const winners: string[] = [];
    try {
      await store.createBucket(BUCKET);
      let previous = new Map<string, string>();
      for (let round = 0; round < 3; round++) {
        const seed = `cross-process ${round}`;
        const sizes = [3 * MiB, 2 * MiB + 12_345, MiB + 1, 3 * MiB - 77_777];
        const bodies = new Map(sizes.map((size, w) => [`writer ${w}`, bodyBytes(seed, KEY, w, size)]));
        const current = new Map([...bodies].map(([name, body]) => [md5Hex(body), name]));
        const allowed = new Map([...previous, ...current]);
        expect(Buffer.concat([...bodyChunks(seed, KEY, 0, sizes[0])]).equals(bodies.get("writer 0")!)).toBe(true);

        const runs = sizes.map((size, w) => {
          const args = [script, "--same-key", root, BUCKET, KEY, seed, String(w), String(size), "8"];
          const [file, argv] = setpriv ? [setpriv, ["--pdeathsig", "SIGKILL", "--", process.execPath, ...args]] : [process.execPath, args];
          const child = spawn(file, argv, { stdio: ["pipe", "pipe", "pipe"] });
          children.push(child);
          let out = "";
          let err = "";
          child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
          child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
          const ready = new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`writer ${w} not ready: ${out}${err}`)), 20_000);
            const onData = () => {
              if (!out.includes("READY")) return;
              clearTimeout(timer);
              child.stdout.off("data", onData);
              resolve();
            };
            child.stdout.on("data", onData);
          });
          const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.once("close", (code) => resolve({ code, out, err })));
          return { child, ready, exited };
        });
        await Promise.all(runs.map((r) => r.ready));
        const reader = readerLoop(store, () => allowed, problems);
        for (const run of runs) run.child.stdin.end("go\n");
        const outcomes = await Promise.all(runs.map((r) => r.exited));
        const { reads } = await reader.stop();
        totalReads += reads;
        outcomes.forEach(({ code, out, err }, w) => {
          expect(err).toBe("");
          expect(code, out).toBe(0);
          const acks = out.split("\n").filter((l) => l.startsWith("ACK "));
          const body = bodies.get(`writer ${w}`)!;
          expect(acks).toEqual(Array.from({ length: 8 }, () => `ACK ${KEY} ${w} ${md5Hex(body)} ${body.length}`));
        });
        const winner = await expectOneOf(store, root, bodies);
        winners.push(winner);
        previous = new Map([[md5Hex(bodies.get(winner)!), winner]]);
        // Each writer closed its store on exit and removed its temp folder; only ours is left.
        expect((await tempEntries(root)).length).toBe(1);
      }
    } finally {
      await store.close();
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(totalReads).toBeGreaterThan(10);
    expect(await tempEntries(root)).toEqual([]);
    console.log(`cross-process concurrency: 3 rounds of 4 processes x 8 puts, ${totalReads} concurrent reads, winners ${JSON.stringify(winners)}`);
  }, 120_000);

  it("a reader whose version is replaced before it reads the metadata opens the new version (it never gets data without metadata)", async () => {
    const root = await freshRoot();
    const store = await ObjectStore.open(root, { durability: "full" });
    try {
      await store.createBucket(BUCKET);
      const v1 = bodyBytes("replaced", KEY, 1, 1000);
      const v2 = bodyBytes("replaced", KEY, 2, 2000);
      await store.put(BUCKET, KEY, chunked(v1, MiB));
      // The reader has opened v1 and is about to read v1's record when a writer replaces v1.
      const held = gate(isMetadata);
      fsHooks.beforeReadFile = held.hook;
      const reading = readAll(store, KEY);
      await held.reached;
      await store.put(BUCKET, KEY, chunked(v2, MiB));
      held.open();
      const read = await reading;
      expect(read?.bytes.equals(v2)).toBe(true);
      expect(read?.etag).toBe(md5Hex(v2));
      expect(read?.size).toBe(v2.length);
    } finally {
      await store.close();
    }
  });

  it.each([
    ["a writer removing the record of the version it replaced", "reuse", 1, (store: ObjectStore) => store.put(BUCKET, KEY, chunked(bodyBytes("reuse", KEY, 1, 20), MiB))],
    ["a delete removing the record of the version it deleted", "delete-reuse", 1, (store: ObjectStore) => store.delete(BUCKET, KEY)],
  ] as const)("%s never removes the record of a newer version that reuses the inode", async (_name, seed, firstNew, operation) => {
    const root = await freshRoot();
    // Two replicas on one volume (--shared): the other's writes do not queue behind this one's per-key order.
    const store = await ObjectStore.open(root, { durability: "full", shared: true });
    const other = await ObjectStore.open(root, { durability: "full", shared: true });
    const path = join(root, BUCKET, ...KEY.split("/"));
    try {
      await store.createBucket(BUCKET);
      await store.put(BUCKET, KEY, chunked(bodyBytes(seed, KEY, 0, 10), MiB));
      const oldInode = (await lstat(path)).ino;
      // The operation has renamed over (or unlinked) the old version and stops just before removing its record.
      const held = gate(isMetadata);
      fsHooks.beforeRm = held.hook;
      const pending = operation(store);
      expect(await held.reached).toContain(`.${oldInode}.json`);
      // Meanwhile the other replica publishes new versions; a freed inode is reused soon (ext4 takes the lowest free one).
      let reusedBy: number | undefined;
      for (let v = firstNew + 1; v < 60 && reusedBy === undefined; v++) {
        await other.put(BUCKET, KEY, chunked(bodyBytes(seed, KEY, v, 30 + v), MiB));
        if ((await lstat(path)).ino === oldInode) reusedBy = v;
      }
      held.open();
      await pending;
      // The version in place has its record; the old inode was not reused while its record was being removed.
      const onDisk = await readFile(path);
      const info = await store.head(BUCKET, KEY);
      expect(info.etag, `current version (inode reused by v${reusedBy})`).toBe(md5Hex(onDisk));
      expect(reusedBy).toBeUndefined();
    } finally {
      await Promise.all([store.close(), other.close()]);
    }
  });
});
