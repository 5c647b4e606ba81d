/**
 * Child program of the multipart crash test (compiled to dist/test/storage/multipartWriter.js).
 *
 *   multipartWriter.js <root> <seed> <firstVersion>
 *     Opens the store (durability full) and, for version firstVersion, firstVersion+1, ... forever,
 *     uploads version v of key "mpu/object" as a multipart upload of 3 parts (64 KiB minimum part
 *     size) and completes it, logging one synchronous line per step:
 *       READY <pid>   START <version>   COMPLETE <version>   ACK <version> <etag>
 *     The test SIGKILLs it at a random moment, mostly inside Complete's copy and publish.
 */
import { writeSync } from "node:fs";
import { Readable } from "node:stream";
import { MultipartUploads } from "../../src/s3/multipart.js";
import { StorageError } from "../../src/storage/errors.js";
import { ObjectStore } from "../../src/storage/store.js";
import { MPU_BUCKET, MPU_KEY, MPU_MIN_PART, versionParts } from "./multipartCheck.js";

function say(line: string): void {
  const bytes = Buffer.from(`${line}\n`);
  for (let off = 0; off < bytes.length; ) off += writeSync(1, bytes, off);
}

async function main(root: string, seed: string, first: number): Promise<never> {
  const store = await ObjectStore.open(root, { durability: "full" });
  await store.createBucket(MPU_BUCKET).catch((err: unknown) => {
    if (!(err instanceof StorageError && err.code === "BucketAlreadyExists")) throw err;
  });
  const uploads = await MultipartUploads.open(store, { hashPool: store.hashPool, durability: "full", minPartBytes: MPU_MIN_PART });
  say(`READY ${process.pid}`);
  for (let version = first; ; version++) {
    say(`START ${version}`);
    const id = await uploads.create({ bucket: MPU_BUCKET, key: MPU_KEY, userMetadata: {} });
    const parts: Array<{ partNumber: number; etag: string }> = [];
    for (const [index, part] of versionParts(seed, version).entries()) {
      // Sized like the S3 layer's parts (Content-Length): equal parts then go in place (src/s3/partSlots.ts).
      const result = await uploads.uploadPart(MPU_BUCKET, MPU_KEY, id, index + 1, Readable.from([part]), { expectedSize: part.length });
      parts.push({ partNumber: index + 1, etag: result.etag });
    }
    say(`COMPLETE ${version}`);
    const done = await uploads.complete(MPU_BUCKET, MPU_KEY, id, parts);
    say(`ACK ${version} ${done.etag}`);
  }
}

const [root, seed, first] = process.argv.slice(2);
if (!root || !seed || !first) {
  process.stderr.write("usage: multipartWriter.js <root> <seed> <firstVersion>\n");
  process.exit(2);
}
main(root, seed, Number(first)).catch((err: unknown) => {
  say(`ERROR ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
