/**
 * Child program of the crash and concurrency tests (compiled to dist/test/storage/crashWriter.js).
 *
 *   crashWriter.js <root> <seed> [firstVersion]
 *     Opens the store (durability full) and performs operation firstVersion, firstVersion+1, ...
 *     forever, as crashCheck.operation() dictates: puts of generated bodies (some deliberately with
 *     a wrong size or MD5, which must fail) and deletes. Logs, one synchronous write per line:
 *       READY <pid>
 *       START <key> <version>        ACK <key> <version> <md5> <size>    FAIL <key> <version> <code>
 *       DEL-START <key> <version>    DEL-ACK <key> <version> <existed>
 *       ERROR <message>              (then exits 1)
 *     The test kills it with SIGKILL; a line on stdout is out before the next step begins.
 *
 *   crashWriter.js --same-key <root> <bucket> <key> <seed> <version> <size> <count>
 *     Opens the store as a shared root (other writers run at once), prints READY, waits for a line
 *     on stdin, then puts body (seed, key, version, size) to the key `count` times, printing
 *     ACK <key> <version> <md5> <size> after each, closes the store and exits 0.
 */
import { writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { StorageError } from "../../src/storage/errors.js";
import { ObjectStore } from "../../src/storage/store.js";
import { bodyChunks, bodySize, CRASH_BUCKET, operation, sabotage } from "./crashCheck.js";

function say(line: string): void {
  const bytes = Buffer.from(`${line}\n`);
  for (let off = 0; off < bytes.length; ) off += writeSync(1, bytes, off);
}

/** The body as an async iterable, so generating it overlaps with the store's writing and hashing. */
async function* body(seed: string, key: string, version: number, size?: number): AsyncGenerator<Buffer> {
  for (const chunk of bodyChunks(seed, key, version, size)) {
    yield chunk;
    await Promise.resolve();
  }
}

async function crashLoop(root: string, seed: string, firstVersion: number): Promise<never> {
  const store = await ObjectStore.open(root, { durability: "full" });
  try {
    await store.createBucket(CRASH_BUCKET);
  } catch (err) {
    if (!(err instanceof StorageError && err.code === "BucketAlreadyExists")) throw err;
  }
  say(`READY ${process.pid}`);
  for (let version = firstVersion; ; version++) {
    const { key, kind } = operation(seed, version);
    if (kind === "delete") {
      say(`DEL-START ${key} ${version}`);
      const existed = await store.delete(CRASH_BUCKET, key);
      say(`DEL-ACK ${key} ${version} ${existed}`);
      continue;
    }
    const size = bodySize(seed, key, version);
    const lie = sabotage(seed, key, version);
    say(`START ${key} ${version}`);
    try {
      const result = await store.put(CRASH_BUCKET, key, body(seed, key, version), {
        contentType: "application/octet-stream",
        expectedSize: lie === "size" ? size + 1 : size,
        ...(lie === "md5" ? { expectedMd5: Buffer.alloc(16, 7) } : {}),
      });
      say(`ACK ${key} ${version} ${result.etag} ${result.size}`);
    } catch (err) {
      if (!(lie && err instanceof StorageError)) throw err;
      say(`FAIL ${key} ${version} ${err.code}`);
    }
  }
}

async function sameKey(root: string, bucket: string, key: string, seed: string, version: number, size: number, count: number): Promise<void> {
  const store = await ObjectStore.open(root, { durability: "full", shared: true });
  try {
    say(`READY ${process.pid}`);
    const input = createInterface({ input: process.stdin });
    await new Promise<void>((resolve) => input.once("line", () => resolve()));
    input.close();
    for (let i = 0; i < count; i++) {
      const result = await store.put(bucket, key, body(seed, key, version, size), { expectedSize: size });
      say(`ACK ${key} ${version} ${result.etag} ${result.size}`);
    }
  } finally {
    await store.close();
  }
}

async function main(args: string[]): Promise<void> {
  if (args[0] === "--same-key") {
    const [, root, bucket, key, seed, version, size, count] = args;
    if (!root || !bucket || !key || !seed || !version || !size || !count) throw new Error("usage: --same-key <root> <bucket> <key> <seed> <version> <size> <count>");
    await sameKey(root, bucket, key, seed, Number(version), Number(size), Number(count));
    return;
  }
  const [root, seed, first = "1"] = args;
  if (!root || !seed) throw new Error("usage: crashWriter.js <root> <seed> [firstVersion]");
  await crashLoop(root, seed, Number(first));
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    say(`ERROR ${String(err instanceof Error ? (err.stack ?? err.message) : err).replace(/\n/g, " | ")}`);
    process.exit(1);
  },
);
