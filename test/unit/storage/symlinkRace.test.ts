import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toS3Error } from "../../../src/s3/errors.js";
import { MultipartUploads } from "../../../src/s3/multipart.js";
import { StorageError } from "../../../src/storage/errors.js";
import { INTERNAL_DIR, keyDigest } from "../../../src/storage/layout.js";
import { ObjectStore } from "../../../src/storage/store.js";

/**
 * A folder inside the store swapped for a symlink to a folder outside it, over and over, by a
 * worker thread (truly in parallel with the store's calls in the thread pool) while PUTs, deletes,
 * copies and multipart uploads go through that folder. Checking a path and then using it is two
 * steps; the store opens each folder relative to its parent without following links and writes
 * through the open folder (src/storage/openDir.ts), so nothing outside the root may ever change,
 * and every request either works or fails as the client's problem (a 4xx), never a 500 or a crash.
 */

/** Swaps each target for a link to `outside` and back until told to stop; counts the swaps. */
const SWAPPER = `
const { workerData, parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const stop = new Int32Array(workerData.stop);
let swaps = 0;
while (Atomics.load(stop, 0) === 0) {
  for (const target of workerData.targets) {
    try {
      fs.renameSync(target, target + ".aside");
      fs.symlinkSync(workerData.outside, target);
      swaps++;
      fs.unlinkSync(target);
    } catch {}
    try { fs.renameSync(target + ".aside", target); } catch {}
  }
}
parentPort.postMessage(swaps);
`;

let work: string;
let root: string;
let outside: string;
let store: ObjectStore;
let uploads: MultipartUploads;

/** Every file under `dir` with its bytes and mtime: what must not change. */
function snapshot(dir: string): Record<string, string> {
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  return Object.fromEntries(
    entries.map((e) => {
      const path = join(e.parentPath, e.name);
      const stats = statSync(path);
      return [path, stats.isFile() ? `${readFileSync(path, "hex")} ${stats.mtimeMs}` : `dir ${stats.mtimeMs}`];
    }),
  );
}

beforeAll(async () => {
  work = realpathSync(mkdtempSync(join(tmpdir(), "app-snapshots-symlink-race-")));
  root = join(work, "root");
  outside = join(work, "outside");
  mkdirSync(root);
  mkdirSync(join(outside, "sub"), { recursive: true });
  writeFileSync(join(outside, "a"), "outside: must stay as it is");
  writeFileSync(join(outside, "sub", "b"), "outside too");
  store = await ObjectStore.open(root);
  await store.createBucket("bkt");
  uploads = await MultipartUploads.open(store, { hashPool: store.hashPool, durability: "full", minPartBytes: 1 });
});
afterAll(async () => {
  await uploads?.close();
  await store?.close();
  rmSync(work, { recursive: true, force: true });
});

const body = (text: string) => Readable.from([Buffer.from(text)]);

/** Starts a SWAPPER on `targets`; the function it returns stops it and gives its count of swaps. */
function startSwapper(targets: string[]): () => Promise<number> {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const swapper = new Worker(SWAPPER, { eval: true, workerData: { stop: stop.buffer, outside, targets } });
  const swaps = new Promise<number>((resolve, reject) => {
    swapper.once("message", resolve);
    swapper.once("error", reject);
  });
  return () => {
    Atomics.store(stop, 0, 1);
    return swaps;
  };
}

/** Counts the failed results by code in `failures`, each of which must be a client error; returns how many succeeded. */
function tally(results: Array<PromiseSettledResult<unknown>>, failures: Map<string, number>): number {
  let succeeded = 0;
  for (const result of results) {
    if (result.status === "fulfilled") {
      succeeded++;
      continue;
    }
    const err: unknown = result.reason;
    expect(toS3Error(err).status, `a request failed as a server error: ${String(err)}`).toBeLessThan(500);
    const code = err instanceof StorageError ? err.code : toS3Error(err).code;
    failures.set(code, (failures.get(code) ?? 0) + 1);
  }
  return succeeded;
}

/** One request through the swapped folder; anything it throws must be a client error. */
const OPERATIONS: Array<(i: number) => Promise<unknown>> = [
  (i) => store.put("bkt", "dir/a", body(`put ${i}`)),
  (i) => store.put("bkt", `dir/sub/b${i % 3}`, body(`nested ${i}`)),
  (i) => store.put("bkt", "dir/", body(""), { condition: i % 2 ? { ifAbsent: true } : {} }),
  () => store.delete("bkt", "dir/a"),
  (i) => store.delete("bkt", `dir/sub/b${i % 3}`),
  async (i) => {
    const source = await store.open("bkt", "dir/a");
    return store.put("bkt", `dir/copy${i % 2}`, source.stream());
  },
  async (i) => {
    const uploadId = await uploads.create({ bucket: "bkt", key: "dir/mp", userMetadata: {} });
    const part = await uploads.uploadPart("bkt", "dir/mp", uploadId, 1, body(`part ${i}`), {});
    return uploads.complete("bkt", "dir/mp", uploadId, [{ partNumber: 1, etag: part.etag }]);
  },
];

describe("a folder swapped for a symlink to outside the root while requests use it", () => {
  it("never creates, changes or removes anything outside the root, and requests only fail as 4xx", { timeout: 60_000 }, async () => {
    const before = snapshot(outside);
    await store.put("bkt", "dir/a", body("first"));
    const digest = keyDigest("dir/a");
    // The key's folder, and the metadata folder of its records.
    const stopSwapper = startSwapper([join(root, "bkt", "dir"), join(root, INTERNAL_DIR, "meta", "bkt", digest.slice(0, 2))]);
    const failures = new Map<string, number>();
    let succeeded = 0;
    let swapped: number;
    try {
      for (let round = 0; round < 60; round++) {
        succeeded += tally(await Promise.allSettled(OPERATIONS.map((operation) => operation(round))), failures);
        expect(snapshot(outside), `round ${round}: the folder outside the root changed`).toEqual(before);
      }
    } finally {
      swapped = await stopSwapper();
    }
    console.log(`symlink race: ${swapped} swaps, ${succeeded} requests done, failures ${JSON.stringify(Object.fromEntries(failures))}`);
    expect(swapped).toBeGreaterThan(0);
    expect(snapshot(outside)).toEqual(before);
  });

  it("keeps multipart parts written in place (and their Complete) inside the root when the upload's folder is swapped", { timeout: 60_000 }, async () => {
    const before = snapshot(outside);
    const failures = new Map<string, number>();
    let swapped = 0;
    let inPlace = 0;
    for (let round = 0; round < 30; round++) {
      const key = `mp-in-place${round % 2}`;
      const uploadId = await uploads.create({ bucket: "bkt", key, userMetadata: {} });
      // The first part fixes the slot size, so the later ones go to the upload's data file.
      await uploads.uploadPart("bkt", key, uploadId, 1, body("11111111"), { expectedSize: 8 });
      const stopSwapper = startSwapper([join(root, INTERNAL_DIR, "uploads", uploadId)]);
      const results: Array<PromiseSettledResult<unknown>> = [];
      try {
        const parts = await Promise.allSettled([2, 3].map((n) => uploads.uploadPart("bkt", key, uploadId, n, body(`${n}`.repeat(n === 3 ? 4 : 8)), { expectedSize: n === 3 ? 4 : 8 })));
        results.push(...parts);
        const listed = await uploads.listParts("bkt", key, uploadId).catch(() => undefined);
        if (listed) {
          inPlace += listed.parts.filter((p) => p.offset !== undefined).length;
          results.push(...(await Promise.allSettled([uploads.complete("bkt", key, uploadId, listed.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })))])));
        }
      } finally {
        swapped += await stopSwapper();
      }
      tally(results, failures);
      await uploads.abort("bkt", key, uploadId).catch(() => undefined);
      expect(snapshot(outside), `round ${round}: the folder outside the root changed`).toEqual(before);
    }
    console.log(`symlink race (parts in place): ${swapped} swaps, ${inPlace} parts in place, failures ${JSON.stringify(Object.fromEntries(failures))}`);
    expect(swapped).toBeGreaterThan(0);
    expect(inPlace).toBeGreaterThan(0);
    expect(snapshot(outside)).toEqual(before);
  });
});
