import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { StorageError } from "../../../src/storage/errors.js";
import { sweepMetadata, STALE_AFTER_MS } from "../../../src/storage/janitor.js";
import { INTERNAL_DIR } from "../../../src/storage/layout.js";
import { ObjectStore } from "../../../src/storage/store.js";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function newRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "app-snapshots-store-"));
  roots.push(root);
  return root;
}

const body = (bytes: Buffer | string) => Readable.from([Buffer.from(bytes)]);
const md5 = (bytes: Buffer | string) => createHash("md5").update(bytes).digest("hex");

async function read(store: ObjectStore, bucket: string, key: string): Promise<Buffer> {
  const object = await store.open(bucket, key);
  const chunks: Buffer[] = [];
  for await (const chunk of object.stream()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

/** Everything under the store's temp folder: must be empty after any write, failed or not. */
function tempFiles(root: string): string[] {
  const tmp = join(root, INTERNAL_DIR, "tmp");
  return readdirSync(tmp).flatMap((dir) => readdirSync(join(tmp, dir)));
}

function metadataFiles(root: string): string[] {
  const meta = join(root, INTERNAL_DIR, "meta");
  return readdirSync(meta, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
}

describe("object store", () => {
  let root: string;
  let store: ObjectStore;
  beforeEach(async () => {
    root = newRoot();
    store = await ObjectStore.open(root);
    await store.createBucket("velero");
  });
  afterEach(async () => {
    await store.close();
  });

  it("stores an object as a plain file at <root>/<bucket>/<key> with its metadata", async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 3);
    const result = await store.put("velero", "backups/b1/b1.tar.gz", body(bytes), {
      contentType: "application/gzip",
      userMetadata: { owner: "shop" },
      checksums: { crc32: "AAAAAA==" },
      digests: ["sha256", "crc32"],
    });
    expect(readFileSync(join(root, "velero", "backups", "b1", "b1.tar.gz")).equals(bytes)).toBe(true);
    expect(result.etag).toBe(md5(bytes));
    expect(result.digests.sha256!.toString("hex")).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(result.digests.crc32!.readUInt32BE()).toBe(crc32(bytes));
    const info = await store.head("velero", "backups/b1/b1.tar.gz");
    expect(info).toMatchObject({ size: bytes.length, etag: md5(bytes), contentType: "application/gzip", userMetadata: { owner: "shop" }, checksums: { crc32: "AAAAAA==" } });
    expect((await read(store, "velero", "backups/b1/b1.tar.gz")).equals(bytes)).toBe(true);
    expect(tempFiles(root)).toEqual([]);
  });

  it("replaces an object whole, and keeps one metadata record per object", async () => {
    await store.put("velero", "k", body("first version"));
    await store.put("velero", "k", body("second"));
    expect((await read(store, "velero", "k")).toString()).toBe("second");
    expect((await store.head("velero", "k")).etag).toBe(md5("second"));
    expect(metadataFiles(root)).toHaveLength(1);
  });

  it("reads a single range and streams from the version it opened, even if replaced meanwhile", async () => {
    await store.put("velero", "k", body("0123456789"));
    const object = await store.open("velero", "k");
    await store.put("velero", "k", body("abcdefghij"));
    const chunks: Buffer[] = [];
    for await (const chunk of object.stream({ start: 2, end: 5 })) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("2345");
    expect(object.info.etag).toBe(md5("0123456789"));
  });

  it.each([
    ["a wrong Content-MD5", { expectedMd5: Buffer.alloc(16) }, "BadDigest"],
    ["a short body", { expectedSize: 100 }, "IncompleteBody"],
  ])("refuses %s and leaves the previous object, no temp file and no stray metadata", async (_name, options, code) => {
    await store.put("velero", "k", body("previous"));
    const err = await failure(store.put("velero", "k", body("new bytes"), options));
    expect(err.code).toBe(code);
    expect((await read(store, "velero", "k")).toString()).toBe("previous");
    expect(tempFiles(root)).toEqual([]);
    expect(metadataFiles(root)).toHaveLength(1);
  });

  it("loses nothing when the client's stream breaks mid-body", async () => {
    await store.put("velero", "k", body("previous"));
    const broken = new Readable({
      read() {
        this.push(randomBytes(3 * 1024 * 1024));
        this.destroy(new Error("connection reset"));
      },
    });
    await expect(store.put("velero", "k", broken)).rejects.toThrow("connection reset");
    expect((await read(store, "velero", "k")).toString()).toBe("previous");
    expect(tempFiles(root)).toEqual([]);
  });

  it("names a client that went away mid-body IncompleteBody, not an I/O error (an aborted upload was logged as a 500)", async () => {
    for (const code of ["ECONNRESET", "ERR_STREAM_PREMATURE_CLOSE"]) {
      const aborted = new Readable({
        read() {
          this.push(randomBytes(64 * 1024));
          // What Node's HTTP server gives a request whose socket closed before its body ended.
          this.destroy(Object.assign(new Error("aborted"), { code }));
        },
      });
      const err = await failure(store.put("velero", "k", aborted));
      expect(err.code, code).toBe("IncompleteBody");
      expect(err.reason).toContain("client closed the connection");
    }
    expect(tempFiles(root)).toEqual([]);
  });

  it("stores a small body announced by its length with the same digests, and refuses one that is longer or shorter", async () => {
    const bytes = randomBytes(4096);
    const result = await store.put("velero", "small", body(bytes), { expectedSize: bytes.length, digests: ["sha256", "sha1"] });
    expect(result.etag).toBe(md5(bytes));
    expect(result.digests.sha256!.toString("hex")).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(result.digests.sha1!.toString("hex")).toBe(createHash("sha1").update(bytes).digest("hex"));
    expect((await read(store, "velero", "small")).equals(bytes)).toBe(true);
    for (const expectedSize of [bytes.length - 1, bytes.length + 1]) {
      const err = await failure(store.put("velero", "small", body(randomBytes(4096)), { expectedSize }));
      expect(err.code).toBe("IncompleteBody");
    }
    expect((await read(store, "velero", "small")).equals(bytes)).toBe(true);
    expect(tempFiles(root)).toEqual([]);
    expect(metadataFiles(root)).toHaveLength(1);
  });

  it("refuses objects over the size limit", async () => {
    const small = await ObjectStore.open(root, { maxObjectBytes: 1024 });
    try {
      for (const options of [{}, { expectedSize: 4096 }]) {
        const err = await failure(small.put("velero", "big", body(randomBytes(4096)), options));
        expect([err.code, err.message]).toEqual(["EntityTooLarge", "the object is larger than the limit of 1024 bytes"]);
      }
      expect(existsSync(join(root, "velero", "big"))).toBe(false);
    } finally {
      await small.close();
    }
  });

  it("refuses keys that collide with a file or a directory, with the path that is in the way", async () => {
    await store.put("velero", "a/b", body("file"));
    const under = await failure(store.put("velero", "a/b/c", body("x")));
    expect([under.code, under.message]).toEqual(["KeyConflict", 'key "a/b/c" needs "a/b" to be a directory, but object "a/b" exists in bucket "velero"']);
    await store.put("velero", "d/e/f", body("x"));
    const over = await failure(store.put("velero", "d/e", body("x")));
    expect([over.code, over.message]).toEqual(["KeyConflict", 'key "d/e" is a prefix of existing objects ("d/e/...") in bucket "velero"; a file cannot also be a directory']);
  });

  it("refuses invalid keys and buckets, and missing buckets, before touching the disk", async () => {
    expect((await failure(store.put("velero", "../escape", body("x")))).message).toBe(`invalid key "../escape": the key's segment 1 is ".."; '.' and '..' segments are not allowed`);
    expect((await failure(store.put("Velero", "k", body("x")))).code).toBe("InvalidBucketName");
    expect((await failure(store.put("missing", "k", body("x")))).message).toBe('bucket "missing" does not exist');
    expect((await failure(store.open("velero", "nothing"))).code).toBe("NoSuchKey");
    expect(readdirSync(root).sort()).toEqual([INTERNAL_DIR, "velero"]);
  });

  it("never follows a symlink planted in the store, for reads or writes", async () => {
    const outside = newRoot();
    writeFileSync(join(outside, "secret"), "secret");
    symlinkSync(outside, join(root, "velero", "evil"));
    symlinkSync(join(outside, "secret"), join(root, "velero", "leak"));
    expect((await failure(store.open("velero", "evil/secret"))).code).toBe("NoSuchKey");
    expect((await failure(store.open("velero", "leak"))).code).toBe("NoSuchKey");
    const write = await failure(store.put("velero", "evil/new", body("x")));
    expect([write.code, write.message]).toEqual(["KeyConflict", '"evil" in bucket "velero" is a symbolic link; the store does not follow links']);
    expect(await store.delete("velero", "evil/secret")).toBe(false);
    expect(readdirSync(outside)).toEqual(["secret"]);
    expect((await store.list("velero")).objects).toEqual([]);
  });

  it("deletes an object and the directories it leaves empty, up to the bucket", async () => {
    await store.put("velero", "backups/b1/b1.tar.gz", body("x"));
    await store.put("velero", "backups/b1/b1-logs.gz", body("x"));
    await store.put("velero", "backups/b2/deep/x", body("x"));
    expect(await store.delete("velero", "backups/b2/deep/x")).toBe(true);
    expect(readdirSync(join(root, "velero", "backups"))).toEqual(["b1"]);
    expect(await store.delete("velero", "backups/b1/b1.tar.gz")).toBe(true);
    expect(await store.delete("velero", "backups/b1/b1-logs.gz")).toBe(true);
    expect(readdirSync(join(root, "velero"))).toEqual([]);
    expect(await store.delete("velero", "backups/b1/b1-logs.gz")).toBe(false);
    expect(metadataFiles(root)).toEqual([]);
  });

  it("deletes siblings concurrently: every delete succeeds, the emptied folders go, no record is left (aws s3 rm --recursive)", async () => {
    for (let round = 0; round < 4; round++) {
      // Many small folders: each is emptied by one of two racing deletes.
      const keys = Array.from({ length: 120 }, (_, i) => `tree/d${i % 60}/sub/file-${round}-${i}`);
      for (const key of keys) await store.put("velero", key, body(key));
      // A delete that empties a folder removes it while others are still fsyncing it.
      expect(await Promise.all(keys.map((key) => store.delete("velero", key)))).toEqual(keys.map(() => true));
      expect(readdirSync(join(root, "velero"))).toEqual([]);
      expect(metadataFiles(root)).toEqual([]);
    }
  });

  it("lists each object with the ETag of its metadata record, and none for files it did not write", async () => {
    const put = await store.put("velero", "a/one", body("one"));
    writeFileSync(join(root, "velero", "a", "placed-by-lvp"), "x");
    const page = await store.list("velero", { prefix: "a/" });
    expect(page.objects.map((o) => [o.key, o.etag])).toEqual([
      ["a/one", put.etag],
      ["a/placed-by-lvp", undefined],
    ]);
  });

  it("lists buckets without its internal folder or lost+found, and deletes only empty buckets", async () => {
    mkdirSync(join(root, "lost+found"));
    await store.createBucket("kopia");
    expect((await store.listBuckets()).map((b) => b.name)).toEqual(["kopia", "velero"]);
    expect((await failure(store.createBucket("kopia"))).code).toBe("BucketAlreadyExists");
    await store.put("velero", "x", body("x"));
    expect((await failure(store.deleteBucket("velero"))).code).toBe("BucketNotEmpty");
    mkdirSync(join(root, "kopia", "empty-dir"));
    await store.deleteBucket("kopia");
    expect(await store.bucketExists("kopia")).toBe(false);
  });

  it("does not attach metadata to a file someone changed behind its back", async () => {
    await store.put("velero", "k", body("ours"));
    writeFileSync(join(root, "velero", "k"), "changed by hand");
    const info = await store.head("velero", "k");
    expect([info.size, info.etag]).toEqual([15, undefined]);
  });
});

describe("metadata records on disk", () => {
  it("reads a record written by an earlier release (ETag in its `md5` field) as the object's etag", async () => {
    const root = newRoot();
    mkdirSync(join(root, "velero", "backups"), { recursive: true });
    const data = join(root, "velero", "backups", "old.tar");
    writeFileSync(data, "written before the rename");
    const stats = statSync(data, { bigint: true });
    // A multipart ETag: the field was named md5, yet never held only MD5s.
    const etag = `${md5("part md5s")}-2`;
    const store = await ObjectStore.open(root);
    try {
      const record = store.layout.metaFile("velero", "backups/old.tar", stats.ino.toString());
      mkdirSync(dirname(record), { recursive: true });
      // Verbatim the v1 format as earlier releases wrote it.
      writeFileSync(
        record,
        `{"v":1,"key":"backups/old.tar","size":${stats.size},"md5":"${etag}","lastModified":1767225600000,"contentType":"application/x-tar","userMetadata":{"owner":"shop"},"checksums":{},"ino":"${stats.ino}","mtimeNs":"${stats.mtimeNs}"}`,
      );
      expect(await store.head("velero", "backups/old.tar")).toMatchObject({ etag, size: 25, contentType: "application/x-tar", userMetadata: { owner: "shop" } });
      expect((await store.list("velero")).objects.map((o) => [o.key, o.etag])).toEqual([["backups/old.tar", etag]]);
      expect((await failure(store.delete("velero", "backups/old.tar", { ifEtag: md5("other") }))).code).toBe("PreconditionFailed");
      expect(await store.delete("velero", "backups/old.tar", { ifEtag: etag })).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("still writes the ETag as `md5`, so an earlier release (a rollback) reads new records", async () => {
    const root = newRoot();
    const store = await ObjectStore.open(root);
    try {
      await store.createBucket("velero");
      const put = await store.put("velero", "k", body("new"));
      const stats = statSync(join(root, "velero", "k"), { bigint: true });
      const record = JSON.parse(readFileSync(store.layout.metaFile("velero", "k", stats.ino.toString()), "utf8")) as Record<string, unknown>;
      expect(record).toMatchObject({ v: 1, md5: md5("new") });
      expect(record).not.toHaveProperty("etag");
      expect(put.etag).toBe(md5("new"));
    } finally {
      await store.close();
    }
  });
});

describe("path confinement under hostile keys", () => {
  it("every key either fails cleanly or names a file strictly inside its bucket; nothing outside is read or created", async () => {
    const root = newRoot();
    const outside = newRoot();
    writeFileSync(join(outside, "secret"), "secret");
    const store = await ObjectStore.open(root, { durability: "none" });
    await store.createBucket("velero");
    await store.createBucket("other");
    mkdirSync(join(root, "velero", "real"));
    symlinkSync(outside, join(root, "velero", "evil"));
    symlinkSync(join(outside, "secret"), join(root, "velero", "leak"));
    symlinkSync("..", join(root, "velero", "real", "up"));
    const bucketReal = realpathSync(join(root, "velero"));
    const piece = fc.constantFrom("..", ".", "", "evil", "leak", "real", "up", "other", ".app-snapshots", "%2e%2e", "..%2f", "\\..", "secret", "a", "\0", "ü", "lost+found");
    const hostileKey = fc.oneof(fc.array(piece, { minLength: 1, maxLength: 5 }).map((p) => p.join("/")), fc.string({ maxLength: 20 }));
    try {
      await fc.assert(
        fc.asyncProperty(hostileKey, async (key) => {
          const put = await store.put("velero", key, body("payload")).then(
            () => undefined,
            (e: unknown) => e,
          );
          if (put === undefined) {
            // Written: the file is a regular file inside the bucket, reached without links.
            const written = realpathSync(join(root, "velero", key));
            expect(written.startsWith(`${bucketReal}/`)).toBe(true);
            expect((await read(store, "velero", key)).toString()).toBe("payload");
            await store.delete("velero", key);
          } else {
            expect(put).toBeInstanceOf(StorageError);
            expect(["InvalidKey", "KeyConflict"]).toContain((put as StorageError).code);
          }
          const opened = await store.open("velero", key).then(
            async (o) => {
              await o.close();
              return o.info.size;
            },
            (e: unknown) => e,
          );
          // Only objects inside the bucket can be opened; the secret outside never is.
          if (typeof opened === "number") expect(opened).not.toBe("secret".length);
          expect(readdirSync(outside)).toEqual(["secret"]);
          expect(readdirSync(join(root, "other"))).toEqual([]);
        }),
        { numRuns: 400 },
      );
    } finally {
      await store.close();
    }
  });
});

describe("start-up and housekeeping", () => {
  it("reclaims temp folders of earlier instances at start-up", async () => {
    const root = newRoot();
    await (await ObjectStore.open(root)).close();
    const dead = join(root, INTERNAL_DIR, "tmp", "host-1234-abcdef");
    mkdirSync(dead, { recursive: true });
    writeFileSync(join(dead, "half-written"), "partial");
    const store = await ObjectStore.open(root);
    expect(tempFiles(root)).toEqual([]);
    expect(readdirSync(join(root, INTERNAL_DIR, "tmp"))).toHaveLength(1);
    await store.close();
    expect(readdirSync(join(root, INTERNAL_DIR, "tmp"))).toEqual([]);
  });

  it("with a shared root, reclaims only folders whose heartbeat stopped", async () => {
    const root = newRoot();
    const tmp = join(root, INTERNAL_DIR, "tmp");
    mkdirSync(join(tmp, "alive"), { recursive: true });
    mkdirSync(join(tmp, "dead"), { recursive: true });
    const old = new Date(Date.now() - STALE_AFTER_MS - 1000);
    utimesSync(join(tmp, "dead"), old, old);
    const store = await ObjectStore.open(root, { shared: true });
    expect(readdirSync(tmp).filter((n) => n === "alive" || n === "dead")).toEqual(["alive"]);
    await store.close();
  });

  it("with a shared root, reads through the thread pool with the same answers", async () => {
    const root = newRoot();
    const store = await ObjectStore.open(root, { shared: true });
    try {
      await store.createBucket("velero");
      await store.put("velero", "a/k", body("0123456789"));
      expect((await read(store, "velero", "a/k")).toString()).toBe("0123456789");
      const object = await store.open("velero", "a/k");
      expect((await object.read({ start: 2, end: 4 })).toString()).toBe("234");
      expect((await store.head("velero", "a/k")).etag).toBe(md5("0123456789"));
      expect((await failure(store.head("velero", "a/missing"))).code).toBe("NoSuchKey");
      expect((await failure(store.head("velero", "missing/k"))).code).toBe("NoSuchKey");
      expect((await failure(store.head("nobucket", "k"))).code).toBe("NoSuchBucket");
    } finally {
      await store.close();
    }
  });

  it("opens read-only without creating anything", async () => {
    const root = newRoot();
    mkdirSync(join(root, "velero"));
    const store = await ObjectStore.open(root, { readOnly: true });
    expect((await failure(store.put("velero", "k", body("x")))).code).toBe("ReadOnly");
    expect(readdirSync(root)).toEqual(["velero"]);
    await store.close();
  });

  it("sweeps metadata records that no longer match a file, once they are old enough", async () => {
    const root = newRoot();
    const store = await ObjectStore.open(root);
    await store.createBucket("velero");
    await store.put("velero", "kept", body("x"));
    await store.put("velero", "gone", body("y"));
    rmSync(join(root, "velero", "gone"));
    const cache = (store as unknown as { metadata: Parameters<typeof sweepMetadata>[1] }).metadata;
    expect(await sweepMetadata(store.layout, cache, Date.now())).toBe(0);
    expect(await sweepMetadata(store.layout, cache, Date.now() + 11 * 60_000)).toBe(1);
    expect((await store.head("velero", "kept")).etag).toBe(md5("x"));
    await store.close();
  });

  it("fails to open a root that does not exist, with the path", async () => {
    const err = await failure(ObjectStore.open("/nonexistent/app-snapshots-root"));
    expect(err.message).toBe("the store root does not exist: /nonexistent/app-snapshots-root (ENOENT)");
  });
});
