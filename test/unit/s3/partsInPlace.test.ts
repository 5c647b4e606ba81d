import { createHash, randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MultipartUploads } from "../../../src/s3/multipart.js";
import { ObjectStore } from "../../../src/storage/store.js";

const MIN_PART = 64 * 1024;
const md5 = (b: Buffer) => createHash("md5").update(b).digest();
const multipartEtag = (parts: Buffer[]) => `${createHash("md5").update(Buffer.concat(parts.map(md5))).digest("hex")}-${parts.length}`;

async function read(store: ObjectStore, key: string): Promise<Buffer> {
  const object = await store.open("bkt", key);
  return object.info.size === 0 ? (await object.close(), Buffer.alloc(0)) : object.read({ start: 0, end: object.info.size - 1 });
}

describe("multipart parts written in place", () => {
  let root: string;
  let store: ObjectStore;
  let uploads: MultipartUploads;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "parts-in-place-"));
    store = await ObjectStore.open(root);
    await store.createBucket("bkt");
    uploads = await MultipartUploads.open(store, { hashPool: store.hashPool, durability: "full", minPartBytes: MIN_PART });
  });
  afterEach(async () => {
    await uploads.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  const upload = async (id: string, n: number, body: Buffer) => uploads.uploadPart("bkt", "k", id, n, Readable.from([body]), { expectedSize: body.length });

  it("publishes equal parts sent out of order as the object without copying them, with the multipart ETag", async () => {
    const parts = [randomBytes(2 * MIN_PART), randomBytes(2 * MIN_PART), randomBytes(1000)];
    const id = await uploads.create({ bucket: "bkt", key: "k", userMetadata: {} });
    const etags: string[] = [];
    etags[0] = (await upload(id, 1, parts[0]!)).etag;
    etags[2] = (await upload(id, 3, parts[2]!)).etag;
    etags[1] = (await upload(id, 2, parts[1]!)).etag;
    expect(etags).toEqual(parts.map((p) => md5(p).toString("hex")));
    const listed = await uploads.listParts("bkt", "k", id);
    expect(listed.parts.map((p) => [p.partNumber, p.size, p.etag])).toEqual(parts.map((p, i) => [i + 1, p.length, etags[i]]));
    const assembled = statSync(join(root, ".app-snapshots", "uploads", id, "assembled.data"));
    const done = await uploads.complete("bkt", "k", id, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
    expect(done.etag).toBe(multipartEtag(parts));
    expect((await read(store, "k")).equals(Buffer.concat(parts))).toBe(true);
    // The very file the parts were written into: nothing was copied.
    expect(statSync(join(root, "bkt", "k")).ino).toBe(assembled.ino);
    expect((await store.head("bkt", "k")).partSizes).toEqual(parts.map((p) => p.length));
  });

  it("answers a Complete retried after a crash that followed the publish (the data file already moved) with the object it published", async () => {
    const parts = [randomBytes(2 * MIN_PART), randomBytes(1000)];
    const id = await uploads.create({ bucket: "bkt", key: "k", userMetadata: {} });
    const etags = [(await upload(id, 1, parts[0]!)).etag, (await upload(id, 2, parts[1]!)).etag];
    // What a Complete killed right after its publish leaves: the object in place, the upload and its records still there.
    await uploads.parts.inBucketFolder(id, (dir) => store.publishFile("bkt", "k", { dir, name: "assembled.data" }, { etag: multipartEtag(parts) }));
    const done = await uploads.complete("bkt", "k", id, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
    expect(done.etag).toBe(multipartEtag(parts));
    expect((await read(store, "k")).equals(Buffer.concat(parts))).toBe(true);
  });

  it("uses a part's last upload, and copies when the parts are not the file's layout", async () => {
    const id = await uploads.create({ bucket: "bkt", key: "k", userMetadata: {} });
    const first = randomBytes(2 * MIN_PART);
    const second = [randomBytes(2 * MIN_PART), randomBytes(2 * MIN_PART)];
    const third = randomBytes(MIN_PART);
    const e1 = (await upload(id, 1, first)).etag;
    await upload(id, 2, second[0]!);
    const e2 = (await upload(id, 2, second[1]!)).etag;
    // Larger than the slot: stored as an object of its own.
    const big = randomBytes(3 * MIN_PART);
    const e3 = (await upload(id, 3, big)).etag;
    await upload(id, 4, third);
    // Parts 1 and 3 only: not the file's layout (part 2 is skipped), so Complete copies.
    const done = await uploads.complete("bkt", "k", id, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: e2 },
      { partNumber: 3, etag: e3 },
    ]);
    expect(done.etag).toBe(multipartEtag([first, second[1]!, big]));
    expect((await read(store, "k")).equals(Buffer.concat([first, second[1]!, big]))).toBe(true);
  });

  it("copies the first parts when a later part is recorded, leaving that part's bytes alone", async () => {
    const id = await uploads.create({ bucket: "bkt", key: "k", userMetadata: {} });
    const parts = [randomBytes(2 * MIN_PART), randomBytes(MIN_PART), randomBytes(2 * MIN_PART)];
    const etags = [];
    for (const [i, p] of parts.entries()) etags.push((await upload(id, i + 1, p)).etag);
    const done = await uploads.complete("bkt", "k", id, [
      { partNumber: 1, etag: etags[0]! },
      { partNumber: 2, etag: etags[1]! },
    ]);
    expect(done.etag).toBe(multipartEtag(parts.slice(0, 2)));
    expect((await read(store, "k")).equals(Buffer.concat(parts.slice(0, 2)))).toBe(true);
  });
});
