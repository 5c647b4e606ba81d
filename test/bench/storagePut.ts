// Child of test/bench/storage.ts: one large durable PUT through the store in a process of its own,
// so its memory is measured alone. Usage: storagePut.js ROOT BUCKET KEY BYTES; prints one JSON line.
import { randomBytes } from "node:crypto";
import { ObjectStore } from "../../src/storage/store.js";
import { repeatedBody, statusKiB } from "./storageHelpers.js";

const [root, bucket, key, sizeText] = process.argv.slice(2);
const size = Number(sizeText);
if (!root || !bucket || !key || !Number.isSafeInteger(size) || size <= 0) throw new Error("usage: storagePut.js ROOT BUCKET KEY BYTES");

const block = randomBytes(1024 * 1024);
// shared: the benchmark's own store instance has its temp folder under the same root.
const store = await ObjectStore.open(root, { durability: "full", shared: true, maxObjectBytes: size });
const idleRssKiB = statusKiB("self", "VmRSS");
const started = performance.now();
const result = await store.put(bucket, key, repeatedBody(block, size));
const seconds = (performance.now() - started) / 1000;
const peakRssKiB = statusKiB("self", "VmHWM");
await store.close();
if (result.size !== size) throw new Error(`stored ${result.size} bytes, expected ${size}`);
console.log(JSON.stringify({ seconds, size: result.size, etag: result.etag, idleRssKiB, peakRssKiB }));
