import { randomBytes, randomUUID } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { constants, createReadStream, existsSync } from "node:fs";
import { link, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "../server/logger.js";
import { DirSync } from "./dirSync.js";
import { clientAborted, errnoOf, fromFsError, StorageError } from "./errors.js";
import { closeFd, POOL_CALLS, readFd, SYNC_CALLS, writeDurably, type FileCalls } from "./fd.js";
import { digestInline, HashPool, hashesInline, type HashAlgorithm } from "./hashPool.js";
import { reclaimTemp, startHeartbeat, sweepMetadata } from "./janitor.js";
import { bucketNameProblem, keyProblem, printable } from "./keys.js";
import { confine, INTERNAL_DIR, Layout } from "./layout.js";
import { listObjects, type ListOptions, type ListResult } from "./listing.js";
import { DEFAULT_CONTENT_TYPE, MetadataCache, type MetadataRecord, type ObjectMetadata } from "./metadata.js";
import { OneAtATime } from "./oneAtATime.js";
import { DirChain, inChain, OpenDir, openChain, removeTree } from "./openDir.js";
import { STAGING_BUFFER_BYTES, TempObjectWriter, writeFully } from "./tempWriter.js";

/** `full`: fsync data, metadata and directories before a write is acknowledged. `none`: benchmarks only. */
export type Durability = "full" | "none";

/** S3's single-PUT limit. */
export const DEFAULT_MAX_OBJECT_BYTES = 5 * 1024 ** 3;

export interface StoreOptions {
  durability?: Durability;
  /** Open without creating or changing anything (the LVP file server needs only reads). */
  readOnly?: boolean;
  /** Several processes (replicas on an RWX volume) write to this root. */
  shared?: boolean;
  maxObjectBytes?: number;
  hashPool?: HashPool;
  log?: Logger;
}

export interface ObjectInfo {
  bucket: string;
  key: string;
  size: number;
  lastModified: Date;
  /**
   * The S3 ETag without quotes: hex MD5 of the body, or MD5-of-part-MD5s "-N" for a multipart
   * upload; only when the store wrote the object (files placed by others, e.g. LVP, have none).
   */
  etag?: string;
  contentType: string;
  contentEncoding?: string;
  userMetadata: Record<string, string>;
  checksums: Record<string, string>;
  checksumType?: "FULL_OBJECT" | "COMPOSITE";
  contentHeaders?: Record<string, string>;
  /** A multipart object's part sizes, in order. */
  partSizes?: number[];
}

/** What must hold when a write is published (S3 conditional writes); see ObjectStore.put. */
export interface PublishCondition {
  /** If-None-Match: * — fail with PreconditionFailed if the key exists. */
  ifAbsent?: boolean;
  /** If-Match — fail with NoSuchKey if the key is missing, PreconditionFailed if its ETag differs. */
  ifEtag?: string;
}

export interface PutOptions extends Partial<ObjectMetadata> {
  /** Content-MD5 from the client: the write fails with BadDigest unless the body matches. */
  expectedMd5?: Buffer;
  /** Content-Length: the write fails with IncompleteBody unless exactly this many bytes arrive. */
  expectedSize?: number;
  /** More digests to compute while streaming (MD5 is always computed, unless `etag` is given). */
  digests?: HashAlgorithm[];
  /**
   * A last check of the complete body before it is published (the S3 layer verifies payload
   * hashes, chunk signatures and trailer checksums here); throwing discards the upload.
   */
  verify?: (body: { bytes: number; digests: Partial<Record<HashAlgorithm, Buffer>> }) => void | Promise<void>;
  /** The ETag to record instead of the body's MD5 (multipart: MD5 of the part MD5s, "-N"); the MD5 is then not computed. */
  etag?: string;
  /** Checked against the object the write replaces, at the moment it is published. */
  condition?: PublishCondition;
}

export interface PutResult extends ObjectInfo {
  etag: string;
  digests: Partial<Record<HashAlgorithm, Buffer>>;
}

/** An object opened for reading: the file stays the same version even if it is replaced meanwhile. */
export interface OpenObject {
  info: ObjectInfo;
  /** Stream bytes start..end (inclusive); closes the file when done. Call once, or call close(). */
  stream(range?: { start: number; end: number }): Readable;
  /**
   * Write bytes start..end (inclusive) to `out` and close the file; resolves with the bytes written.
   * For large downloads: a few reused buffers instead of a stream's fresh buffer per read.
   */
  copyTo(out: Writable, range: { start: number; end: number }): Promise<number>;
  /** Read bytes start..end (inclusive) into memory and close the file: for small objects, one read. */
  read(range: { start: number; end: number }): Promise<Buffer>;
  close(): Promise<void>;
}

export interface BucketInfo {
  name: string;
  created: Date;
}

const READ_BUFFER_BYTES = STAGING_BUFFER_BYTES;
/** Up to this size (announced by the request) a body is read into memory and hashed on the event loop. */
const SMALL_BODY_BYTES = 64 * 1024;

/**
 * The object store behind every storage endpoint: buckets are directories of the root and objects
 * are plain files (LVP's layout), written atomically and durably:
 *
 *   temp file (same filesystem) → hash in a worker → utimes → fdatasync ┐
 *   metadata record (named by the temp file's inode) → fsync → rename ┘→ rename data → fsync dirs
 *
 * The metadata record exists before the data file becomes visible and names the inode, size and
 * mtime it belongs to, so a reader always gets the metadata of exactly the bytes it opened: never
 * data without metadata, never stale metadata with new data. Renames are atomic, so a crash leaves
 * the old object or the new one, and concurrent writers to one key end with one complete body.
 */
export class ObjectStore {
  readonly durability: Durability;
  readonly readOnly: boolean;
  private readonly metadata: MetadataCache;
  private readonly pool: HashPool;
  private readonly ownPool: boolean;
  /** The largest object a put accepts (S3: 5 GiB for one PUT or part). */
  readonly maxObjectBytes: number;
  private readonly stops: Array<() => void> = [];
  private tmpDir = "";
  /** The folders every write goes through, open while the store is (see openDir.ts); none when read-only. */
  private folders: WriteFolders | undefined;
  /**
   * Publishes and deletes per key, run one at a time: what is at the key is pinned, then replaced or
   * removed, in two steps. Interleaved, a writer could replace a version other than the one it pinned
   * and remove the wrong record, leaving the replaced version's record without its file (found by the
   * S3 fuzzer, whose requests overlap when a client goes away early); a condition could pass on a
   * version that is no longer the one replaced.
   */
  private readonly perKey = new OneAtATime();
  /** Synchronous calls where they take microseconds (a local disk), the thread pool on a shared root (see FileCalls). */
  private readonly calls: FileCalls;
  /** Directory fsyncs, shared by concurrent writes into the same directory. */
  private readonly dirSync = new DirSync();

  private constructor(
    readonly layout: Layout,
    options: StoreOptions,
  ) {
    this.durability = options.durability ?? "full";
    this.readOnly = options.readOnly ?? false;
    this.metadata = new MetadataCache(layout);
    this.ownPool = !options.hashPool;
    this.pool = options.hashPool ?? new HashPool();
    this.maxObjectBytes = options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
    this.calls = options.shared ? POOL_CALLS : SYNC_CALLS;
  }

  /** The hashing workers, to share with a store opened alongside (the multipart area). */
  get hashPool(): HashPool {
    return this.pool;
  }

  /** Opens the store at `root`; unless read-only, reclaims temp files of dead instances first. */
  static async open(root: string, options: StoreOptions = {}): Promise<ObjectStore> {
    let realRoot: string;
    try {
      realRoot = await realpath(root);
      if (!(await lstat(realRoot)).isDirectory()) throw new StorageError("Io", "the store root is not a directory", root);
    } catch (err) {
      if (errnoOf(err) === "ENOENT") throw new StorageError("NoSuchBucket", "the store root does not exist", root, { cause: err });
      throw fromFsError(err, "opening the store root", root);
    }
    const store = new ObjectStore(new Layout(realRoot), options);
    if (!store.readOnly) await store.prepare(options);
    return store;
  }

  private async prepare(options: StoreOptions): Promise<void> {
    const { layout } = this;
    const instance = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      this.folders = openWriteFolders(layout, instance);
      const removed = await reclaimTemp(layout, instance, options.shared ?? false);
      if (removed.length > 0) options.log?.info({ removed }, "reclaimed temp folders of earlier instances");
      this.tmpDir = join(layout.tmp, instance);
    } catch (err) {
      throw fromFsError(err, "preparing the store's internal folder", layout.internal);
    }
    if (options.shared) this.stops.push(startHeartbeat(this.tmpDir, options.log ?? silentLog));
    // Orphaned metadata is harmless (never matched), so it is swept in the background.
    const sweep = setTimeout(() => {
      sweepMetadata(layout, this.metadata).then(
        (n) => n > 0 && options.log?.info({ removed: n }, "removed orphaned metadata records"),
        (err: unknown) => options.log?.warn({ err }, "metadata sweep failed"),
      );
    }, 1_000);
    sweep.unref();
    this.stops.push(() => clearTimeout(sweep));
  }

  async close(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    const folders = this.folders;
    this.folders = undefined;
    if (folders) {
      await removeTree(folders.tmp, folders.instance).catch(() => undefined);
      folders.close();
    }
    if (this.ownPool) await this.pool.close();
  }

  // --- buckets -----------------------------------------------------------------------------

  async listBuckets(): Promise<BucketInfo[]> {
    const names = await readdir(this.layout.root).catch((err: unknown) => {
      throw fromFsError(err, "listing buckets", this.layout.root);
    });
    const buckets: BucketInfo[] = [];
    for (const name of names.sort()) {
      if (bucketNameProblem(name)) continue;
      const stats = await lstat(this.layout.bucketDir(name)).catch(() => undefined);
      if (stats?.isDirectory()) buckets.push({ name, created: stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime });
    }
    return buckets;
  }

  async bucketExists(bucket: string): Promise<boolean> {
    if (bucketNameProblem(bucket)) return false;
    const stats = await this.calls.lstat(this.layout.bucketDir(bucket)).catch(() => undefined);
    return stats?.isDirectory() ?? false;
  }

  async createBucket(bucket: string): Promise<void> {
    this.assertWritable();
    this.checkBucketName(bucket);
    const dir = this.layout.bucketDir(bucket);
    try {
      await mkdir(dir, { mode: 0o755 });
    } catch (err) {
      if (errnoOf(err) === "EEXIST") throw new StorageError("BucketAlreadyExists", `bucket "${bucket}" already exists`, dir);
      throw fromFsError(err, `creating bucket "${bucket}"`, dir);
    }
    await this.syncDirs([this.layout.root]);
  }

  /** Deletes an empty bucket (empty directories left inside do not count as objects). */
  async deleteBucket(bucket: string): Promise<void> {
    this.assertWritable();
    await this.requireBucket(bucket);
    const page = await this.list(bucket, { maxKeys: 1 });
    if (page.objects.length > 0 || page.commonPrefixes.length > 0) throw new StorageError("BucketNotEmpty", `bucket "${bucket}" is not empty`);
    await this.purgeBucket(bucket);
  }

  /** Deletes a bucket with everything in it (the multipart area uses a bucket per upload). */
  async purgeBucket(bucket: string): Promise<void> {
    this.assertWritable();
    await this.requireBucket(bucket);
    const dir = this.layout.bucketDir(bucket);
    try {
      await removeTree(this.writeFolders.root, bucket);
      await removeTree(this.writeFolders.meta, bucket);
    } catch (err) {
      throw fromFsError(err, `deleting bucket "${bucket}"`, dir);
    }
    await this.syncDirs([this.layout.root]);
  }

  // --- objects -----------------------------------------------------------------------------

  /**
   * Streams `body` into the store. Nothing is visible under the key until the whole body has
   * arrived, matched the expected size and MD5, and is durable; on any failure the previous object
   * (if any) is untouched and the temp file is removed.
   */
  async put(bucket: string, key: string, body: Readable | AsyncIterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    this.assertWritable();
    this.checkKey(key);
    await this.requireBucket(bucket);
    const target = this.layout.objectPath(bucket, key);
    await this.checkPlacement(bucket, key, target);

    const temp = this.writeFolders.own.entry(randomUUID());
    let file: FileHandle | undefined;
    const wanted = new Set<HashAlgorithm>(options.digests ?? []);
    if (options.etag === undefined || options.expectedMd5) wanted.add("md5");
    // A small body announced by its length is read into memory, hashed inline and written in one call.
    const small = options.expectedSize !== undefined && options.expectedSize <= SMALL_BODY_BYTES && hashesInline(wanted);
    const hashes = small ? undefined : this.pool.session([...wanted]);
    let bytes: number;
    let digests: Partial<Record<HashAlgorithm, Buffer>>;
    try {
      file = await open(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      if (hashes) {
        const writer = new TempObjectWriter(file, hashes, this.maxObjectBytes, this.durability === "full");
        await pipeline(body, writer);
        digests = await hashes.digest();
        bytes = writer.bytes;
      } else {
        const data = await readAtMost(body, options.expectedSize! + 1);
        if (data.length > this.maxObjectBytes) throw new StorageError("EntityTooLarge", `the object is larger than the limit of ${this.maxObjectBytes} bytes`);
        digests = digestInline(data, wanted);
        await writeFully(file, data, 0);
        bytes = data.length;
      }
      if (options.expectedSize !== undefined && bytes !== options.expectedSize) {
        throw new StorageError("IncompleteBody", `received ${bytes} bytes, expected ${options.expectedSize}`);
      }
      const md5 = digests.md5;
      if (options.expectedMd5 && md5 && !options.expectedMd5.equals(md5)) {
        throw new StorageError("BadDigest", `the body's MD5 ${md5.toString("base64")} does not match Content-MD5 ${options.expectedMd5.toString("base64")}`);
      }
      await options.verify?.({ bytes, digests });
    } catch (err) {
      hashes?.abort();
      await file?.close().catch(() => undefined);
      await rm(temp, { force: true }).catch(() => undefined);
      // A client that went away mid-body is not an I/O error of ours (it was logged as a 500).
      if (clientAborted(err)) throw new StorageError("IncompleteBody", "the request body ended early (the client closed the connection)", undefined, { cause: err });
      throw errnoOf(err) ? fromFsError(err, `writing object "${printable(key)}" in bucket "${bucket}"`, target) : err;
    }
    return this.publishWritten({ bucket, key, target, temp, file, bytes, digests, options, ownsTemp: true });
  }

  /**
   * Publishes a finished file of this filesystem (a multipart upload assembled in place) as the object
   * under `key`, with `options.etag` as its ETag: the same metadata record, fsyncs and atomic rename as
   * put(), without copying the bytes. The file is moved, not copied; if publishing fails it stays where it was.
   *
   * The file is `name` in an open folder (inBucketFolder() of the store that holds it), reached and
   * renamed through that folder's descriptor: a folder on the way swapped for a link is not followed,
   * and neither is the file itself if it is one.
   */
  async publishFile(bucket: string, key: string, from: { dir: OpenDir; name: string }, options: PutOptions & { etag: string }): Promise<PutResult> {
    this.assertWritable();
    this.checkKey(key);
    await this.requireBucket(bucket);
    const target = this.layout.objectPath(bucket, key);
    await this.checkPlacement(bucket, key, target);
    const where = `publishing object "${printable(key)}" in bucket "${bucket}"`;
    const source = from.dir.entry(from.name);
    const file = await open(source, constants.O_WRONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
      throw fromFsError(err, where, target);
    });
    const stats = await file.stat().catch(async (err: unknown) => {
      await file.close().catch(() => undefined);
      throw fromFsError(err, where, target);
    });
    if (!stats.isFile()) {
      await file.close().catch(() => undefined);
      throw new StorageError("Io", `${where}: the file to publish is not a regular file`);
    }
    return this.publishWritten({ bucket, key, target, temp: source, file, bytes: stats.size, digests: {}, options, ownsTemp: false });
  }

  /**
   * The second half of a write, once the body is in `temp` (open as `file`; an entry of an open
   * folder): its metadata record, fsyncs, and the rename over the key, one at a time with the key's
   * other publishes and deletes. On failure the record is removed, and the temp file too if the
   * store created it.
   */
  private async publishWritten(w: {
    bucket: string;
    key: string;
    target: string;
    temp: string;
    file: FileHandle;
    bytes: number;
    digests: Partial<Record<HashAlgorithm, Buffer>>;
    options: PutOptions;
    ownsTemp: boolean;
  }): Promise<PutResult> {
    const { bucket, key, target, temp, options } = w;
    let file: FileHandle | undefined = w.file;
    let record: MetadataRecord | undefined;
    let published = false;
    try {
      const now = new Date();
      await file.utimes(now, now);
      const stats = await file.stat({ bigint: true });
      record = {
        v: 1,
        key,
        size: w.bytes,
        // The record keeps the ETag under its v1 name `md5` (see MetadataRecord).
        md5: options.etag ?? w.digests.md5!.toString("hex"),
        lastModified: now.getTime(),
        contentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
        ...(options.contentEncoding ? { contentEncoding: options.contentEncoding } : {}),
        userMetadata: options.userMetadata ?? {},
        checksums: options.checksums ?? {},
        ...(options.checksumType ? { checksumType: options.checksumType } : {}),
        ...(options.contentHeaders && Object.keys(options.contentHeaders).length > 0 ? { contentHeaders: options.contentHeaders } : {}),
        ...(options.partSizes ? { partSizes: options.partSizes } : {}),
        ino: stats.ino.toString(),
        mtimeNs: stats.mtimeNs.toString(),
      };
      const data = file;
      // The data and its metadata record become durable in parallel; both before the data is visible.
      await Promise.all([(this.durability === "full" ? data.datasync() : Promise.resolve()).then(() => data.close()), this.writeMetadata(bucket, record)]);
      file = undefined;
      const previous = await this.oneAtATime(bucket, key, () => this.publish(temp, bucket, key, options.condition));
      published = true;
      try {
        // The replaced version stays open (pinned) until its record is gone: see pin().
        const ino = previous?.stats.isFile() ? previous.stats.ino.toString() : undefined;
        if (ino !== undefined && ino !== record.ino) await this.removeRecord(bucket, key, ino);
      } finally {
        await previous?.handle?.close().catch(() => undefined);
      }
      return { ...this.info(bucket, key, record), etag: record.md5, digests: w.digests };
    } catch (err) {
      await file?.close().catch(() => undefined);
      if (!published) {
        if (w.ownsTemp) await rm(temp, { force: true }).catch(() => undefined);
        if (record) await this.removeRecord(bucket, key, record.ino).catch(() => undefined);
      }
      throw errnoOf(err) ? fromFsError(err, `writing object "${printable(key)}" in bucket "${bucket}"`, target) : err;
    }
  }

  /**
   * Runs `work` on the bucket's folder, opened from the root without following a link (NoSuchBucket
   * if it is missing, a link or a file), closing it afterwards. For files kept beside the objects (a
   * multipart upload's data file): everything done to them goes through `dir.entry(name)`.
   */
  async inBucketFolder<T>(bucket: string, work: (dir: OpenDir) => Promise<T>): Promise<T> {
    this.checkBucketName(bucket);
    let chain: DirChain;
    try {
      chain = openChain(this.writeFolders.root, [bucket]);
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") throw new StorageError("NoSuchBucket", `bucket "${bucket}" does not exist`, undefined, { cause: err });
      throw fromFsError(err, `opening bucket "${bucket}"`, this.layout.bucketDir(bucket));
    }
    try {
      return await work(chain.last);
    } finally {
      chain.close();
    }
  }

  async head(bucket: string, key: string): Promise<ObjectInfo> {
    const object = await this.open(bucket, key);
    await object.close();
    return object.info;
  }

  /** Opens the current version of an object; symlinks, directories and paths outside the root are "no such key". */
  async open(bucket: string, key: string): Promise<OpenObject> {
    return this.openVersion(bucket, key, 1);
  }

  private async openVersion(bucket: string, key: string, attempt: number): Promise<OpenObject> {
    this.checkKey(key);
    this.checkBucketName(bucket);
    const path = this.layout.objectPath(bucket, key);
    const calls = this.calls;
    // The hot path for small GETs: one realpath proves the bucket and every folder on the way exist
    // and are not links; only a miss asks which one is missing (bucket or key).
    const missing = async () => {
      await this.requireBucket(bucket);
      return new StorageError("NoSuchKey", `no object "${printable(key)}" in bucket "${bucket}"`);
    };
    if ((await confine(dirname(path), calls)) !== "inside") throw await missing();
    let fd: number;
    try {
      fd = await calls.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") throw await missing();
      throw fromFsError(err, `opening object "${printable(key)}"`, path);
    }
    let stats: BigIntStats;
    let record: MetadataRecord | undefined;
    let replaced = false;
    try {
      stats = await calls.fstat(fd);
      if (!stats.isFile()) throw await missing();
      record = await this.metadata.lookup(bucket, key, stats);
      // An overwrite or delete removes the old version's record right after its rename or unlink;
      // a miss on a file that is no longer at the path means it was replaced: open the current one.
      if (!record && attempt < OPEN_ATTEMPTS) replaced = !(await isAtPath(path, stats, calls));
    } catch (err) {
      await calls.close(fd).catch(() => undefined);
      throw errnoOf(err) ? fromFsError(err, `reading object "${printable(key)}"`, path) : err;
    }
    if (replaced) {
      await calls.close(fd).catch(() => undefined);
      return this.openVersion(bucket, key, attempt + 1);
    }
    const truncated = () => new StorageError("Io", `object "${printable(key)}" ended early (truncated behind the store's back)`, path);
    const info: ObjectInfo = record
      ? this.info(bucket, key, record)
      : { bucket, key, size: Number(stats.size), lastModified: new Date(Number(stats.mtimeMs)), contentType: DEFAULT_CONTENT_TYPE, userMetadata: {}, checksums: {} };
    let used = false;
    return {
      info,
      stream(range) {
        if (used) throw new Error("stream() called twice");
        used = true;
        return createReadStream(path, { fd, autoClose: true, start: range?.start ?? 0, ...(range ? { end: range.end } : {}), highWaterMark: READ_BUFFER_BYTES });
      },
      async read(range) {
        if (used) throw new Error("read() after stream() or close()");
        used = true;
        // For small ranges (sendObjectBytes: up to 256 KiB), mostly in the page cache: synchronous on a local disk.
        try {
          const bytes = Buffer.allocUnsafe(range.end - range.start + 1);
          for (let done = 0; done < bytes.length; ) {
            const bytesRead = await calls.read(fd, bytes, done, bytes.length - done, range.start + done);
            if (bytesRead === 0) throw truncated();
            done += bytesRead;
          }
          return bytes;
        } finally {
          await calls.close(fd);
        }
      },
      async copyTo(out, range) {
        if (used) throw new Error("copyTo() after stream(), read() or close()");
        used = true;
        try {
          return await copyRange(fd, out, range, truncated);
        } finally {
          await closeFd(fd);
        }
      },
      async close() {
        if (used) return;
        used = true;
        await calls.close(fd);
      },
    };
  }

  /**
   * Removes the object, then its metadata, then parent directories left empty. False if there was none.
   * With `ifEtag`, only the version with that ETag is removed (else PreconditionFailed; NoSuchKey if none).
   */
  async delete(bucket: string, key: string, condition: { ifEtag?: string } = {}): Promise<boolean> {
    return this.oneAtATime(bucket, key, () => this.deleteNow(bucket, key, condition.ifEtag));
  }

  private async deleteNow(bucket: string, key: string, ifEtag: string | undefined): Promise<boolean> {
    this.assertWritable();
    this.checkKey(key);
    this.checkBucketName(bucket);
    const segments = this.layout.objectSegments(bucket, key);
    const leaf = segments.pop()!;
    const missing = () => {
      if (ifEtag !== undefined) throw new StorageError("NoSuchKey", `no object "${printable(key)}" in bucket "${bucket}"`);
      return false;
    };
    // The bucket and the folders on the way, opened without following a link; the bucket is checked on a miss.
    let chain: DirChain;
    try {
      chain = openChain(this.writeFolders.root, segments);
    } catch (err) {
      const code = errnoOf(err);
      if (code !== "ENOENT" && code !== "ELOOP" && code !== "ENOTDIR") throw fromFsError(err, `deleting object "${printable(key)}"`, this.layout.objectPath(bucket, key));
      await this.requireBucket(bucket);
      return missing();
    }
    try {
      const parent = chain.last;
      const path = parent.entry(leaf);
      let found: Pinned | undefined;
      try {
        found = await pin(path, this.calls);
        if (!found?.stats.isFile()) {
          await found?.handle?.close();
          return missing();
        }
        if (ifEtag !== undefined) await this.checkCondition(bucket, key, found, { ifEtag });
        await rm(path);
      } catch (err) {
        await found?.handle?.close().catch(() => undefined);
        const code = errnoOf(err);
        if (code === "ENOENT" || code === "ENOTDIR") return missing();
        throw fromFsError(err, `deleting object "${printable(key)}"`, join(parent.path, leaf));
      }
      try {
        await this.syncDirs([parent.path]);
      } finally {
        // The data file is gone whatever the fsync said: its record goes too, or it would outlive it.
        try {
          await this.removeRecord(bucket, key, found.stats.ino.toString());
        } finally {
          await found.handle?.close().catch(() => undefined);
        }
      }
      await this.removeEmptyParents(chain, segments);
      return true;
    } finally {
      chain.close();
    }
  }

  async list(bucket: string, options: ListOptions = {}): Promise<ListResult> {
    await this.requireBucket(bucket);
    const dir = this.layout.bucketDir(bucket);
    try {
      // ETags come from the metadata records (cached); a record that does not match the file yields none.
      return await listObjects(dir, options, async (key, stats) => (await this.metadata.lookup(bucket, key, stats))?.md5);
    } catch (err) {
      throw errnoOf(err) ? fromFsError(err, `listing bucket "${bucket}"`, dir) : err;
    }
  }

  // --- internals -----------------------------------------------------------------------------

  /** The record as callers see it: its `md5` field (the on-disk name, kept for existing stores) is the ETag. */
  private info(bucket: string, key: string, record: MetadataRecord): ObjectInfo {
    return {
      bucket,
      key,
      size: record.size,
      lastModified: new Date(record.lastModified),
      etag: record.md5,
      contentType: record.contentType,
      ...(record.contentEncoding ? { contentEncoding: record.contentEncoding } : {}),
      userMetadata: record.userMetadata,
      checksums: record.checksums,
      ...(record.checksumType ? { checksumType: record.checksumType } : {}),
      ...(record.contentHeaders ? { contentHeaders: record.contentHeaders } : {}),
      ...(record.partSizes ? { partSizes: record.partSizes } : {}),
    };
  }

  /** Runs the publishes and deletes of one key one after another in this process (see perKey). */
  private oneAtATime<T>(bucket: string, key: string, work: () => Promise<T>): Promise<T> {
    return this.perKey.run(`${bucket}\0${key}`, work);
  }

  /** A publish condition against what is at the key now (pinned: its record cannot change under us). */
  private async checkCondition(bucket: string, key: string, current: Pinned | undefined, condition: PublishCondition): Promise<void> {
    const exists = current?.stats.isFile() ?? false;
    if (condition.ifAbsent && exists) throw new StorageError("PreconditionFailed", `object "${printable(key)}" exists in bucket "${bucket}" (If-None-Match: *)`);
    if (condition.ifEtag !== undefined) {
      if (!exists) throw new StorageError("NoSuchKey", `no object "${printable(key)}" in bucket "${bucket}"`);
      const record = await this.metadata.lookup(bucket, key, current!.stats);
      if (record?.md5 !== condition.ifEtag) throw new StorageError("PreconditionFailed", `object "${printable(key)}" in bucket "${bucket}" does not have ETag ${condition.ifEtag.slice(0, 70)} (If-Match)`);
    }
  }

  /** The open folders writes go through; only a writable store that is open has them. */
  private get writeFolders(): WriteFolders {
    if (!this.folders) throw new StorageError("ReadOnly", this.readOnly ? "the store was opened read-only" : "the store is closed");
    return this.folders;
  }

  private assertWritable(): void {
    if (this.readOnly) throw new StorageError("ReadOnly", "the store was opened read-only");
  }

  private checkBucketName(bucket: string): void {
    const problem = bucketNameProblem(bucket);
    if (problem) throw new StorageError("InvalidBucketName", problem);
  }

  private checkKey(key: string): void {
    const problem = keyProblem(key);
    if (problem) throw new StorageError("InvalidKey", `invalid key "${printable(key)}": ${problem}`);
  }

  private async requireBucket(bucket: string): Promise<void> {
    this.checkBucketName(bucket);
    const dir = this.layout.bucketDir(bucket);
    const state = await confine(dir, this.calls);
    if (state === "inside") {
      // Gone (moved aside, say, to put a link there) since confine looked: no such bucket either, not an I/O error.
      const stats = await this.calls.lstat(dir).catch((err: unknown) => {
        if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return undefined;
        throw err;
      });
      if (stats?.isDirectory()) return;
    }
    throw new StorageError("NoSuchBucket", `bucket "${bucket}" does not exist`, state === "missing" ? undefined : dir);
  }

  /** Fails early, before the body is read, when the key cannot be placed: `a/b` vs `a/b/c`. */
  private async checkPlacement(bucket: string, key: string, target: string): Promise<void> {
    const state = await confine(dirname(target), this.calls);
    if (state === "missing") return;
    if (state !== "inside") throw await this.placementConflict(bucket, key);
    const stats = await this.calls.lstat(target).catch(() => undefined);
    if (stats?.isDirectory()) throw this.prefixConflict(bucket, key);
  }

  private prefixConflict(bucket: string, key: string): StorageError {
    return new StorageError("KeyConflict", `key "${printable(key)}" is a prefix of existing objects ("${printable(key)}/...") in bucket "${bucket}"; a file cannot also be a directory`);
  }

  /** Names the segment on the key's path that is a file or a symlink. */
  private async placementConflict(bucket: string, key: string): Promise<StorageError> {
    const segments = key.split("/");
    for (let i = 1; i < segments.length; i++) {
      const ancestor = segments.slice(0, i).join("/");
      const stats = await lstat(this.layout.objectPath(bucket, ancestor)).catch(() => undefined);
      if (!stats) break;
      if (stats.isSymbolicLink()) return new StorageError("KeyConflict", `"${printable(ancestor)}" in bucket "${bucket}" is a symbolic link; the store does not follow links`);
      if (!stats.isDirectory()) return new StorageError("KeyConflict", `key "${printable(key)}" needs "${printable(ancestor)}" to be a directory, but object "${printable(ancestor)}" exists in bucket "${bucket}"`);
    }
    return new StorageError("KeyConflict", `the path of key "${printable(key)}" in bucket "${bucket}" is not a plain directory`);
  }

  private async writeMetadata(bucket: string, record: MetadataRecord): Promise<void> {
    const { dirs, name } = this.layout.metaSegments(bucket, record.key, record.ino);
    const temp = this.writeFolders.own.entry(`${randomUUID()}.json`);
    try {
      // Raw descriptors: a FileHandle costs about three times their event-loop time, on every write.
      await writeDurably(temp, Buffer.from(JSON.stringify(record)), this.durability === "full");
      // openChain creates a record folder only when opening it fails with ENOENT (after the key's first write it is there).
      for (let attempt = 1; ; attempt++) {
        try {
          await inChain(this.writeFolders.meta, dirs, 0o700, async (chain) => {
            await rename(temp, chain.last.entry(name));
            await this.syncDirs(chain.created ? newDirParents(chain.created, chain.last.path) : [chain.last.path]);
          });
          return;
        } catch (err) {
          // The folder was removed (or replaced) between its open and the rename: open it again.
          if (errnoOf(err) !== "ENOENT" || attempt >= 5) throw err;
        }
      }
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw fromFsError(err, "writing object metadata", this.layout.metaFile(bucket, record.key, record.ino));
    }
  }

  /** Removes the metadata record of one version of a key, if it is there. */
  private async removeRecord(bucket: string, key: string, ino: string): Promise<void> {
    const { dirs, name } = this.layout.metaSegments(bucket, key, ino);
    let chain: DirChain;
    try {
      chain = openChain(this.writeFolders.meta, dirs);
    } catch (err) {
      // No folder there (or a link or a file instead, never followed): no record of ours in it either.
      const code = errnoOf(err);
      if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") return;
      throw fromFsError(err, "removing object metadata", this.layout.metaFile(bucket, key, ino));
    }
    try {
      await rm(chain.last.entry(name), { force: true });
    } finally {
      chain.close();
    }
  }

  /**
   * Renames the finished temp file over the key and makes the rename durable. The key's folders are
   * opened (and created) from the root without following links, and the rename goes through the
   * open parent, so a folder swapped for a link meanwhile cannot send the object elsewhere. A
   * concurrent delete may remove a folder on the way (ENOENT); that is retried. Returns what was at
   * the key before, if anything, pinned: the caller removes its metadata record, then closes it.
   */
  private async publish(temp: string, bucket: string, key: string, condition?: PublishCondition): Promise<Pinned | undefined> {
    const segments = this.layout.objectSegments(bucket, key);
    const leaf = segments.pop()!;
    for (let attempt = 1; ; attempt++) {
      let chain: DirChain;
      try {
        chain = await this.openParents(bucket, key, segments);
      } catch (err) {
        if (errnoOf(err) === "ENOENT" && attempt < 5) continue;
        throw err;
      }
      try {
        const parent = chain.last;
        const target = parent.entry(leaf);
        const previous = await pin(target, this.calls).catch(() => undefined);
        let handedOver = false;
        try {
          if (previous?.stats.isDirectory()) throw this.prefixConflict(bucket, key);
          if (condition) await this.checkCondition(bucket, key, previous, condition);
          try {
            if (condition?.ifAbsent) {
              // link() never replaces: a key created since the check makes it fail (EEXIST), atomically.
              await link(temp, target);
              await rm(temp, { force: true });
            } else {
              await rename(temp, target);
            }
          } catch (err) {
            const code = errnoOf(err);
            if (code === "ENOENT" && attempt < 5) continue;
            if (code === "EEXIST" && condition?.ifAbsent) {
              const now = await lstat(target).catch(() => undefined);
              if (now?.isFile()) throw new StorageError("PreconditionFailed", `object "${printable(key)}" exists in bucket "${bucket}" (If-None-Match: *)`);
            }
            if (code === "EISDIR" || code === "ENOTEMPTY" || code === "EEXIST") throw this.prefixConflict(bucket, key);
            if (code === "ENOTDIR") throw await this.placementConflict(bucket, key);
            throw err;
          }
          await this.syncDirs(chain.created ? newDirParents(chain.created, parent.path) : [parent.path]);
          handedOver = true;
          return previous;
        } finally {
          if (!handedOver) await previous?.handle?.close().catch(() => undefined);
        }
      } finally {
        chain.close();
      }
    }
  }

  /**
   * Opens the bucket and the key's folders below it (segments, without the file's name), creating
   * the missing folders; never the bucket. A link, a file or a folder replaced while being created
   * fails it as a KeyConflict naming the segment; ENOENT (a concurrent delete) is for the caller to retry.
   */
  private async openParents(bucket: string, key: string, segments: readonly string[]): Promise<DirChain> {
    let bucketDir: DirChain;
    try {
      bucketDir = openChain(this.writeFolders.root, segments.slice(0, 1));
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") throw new StorageError("NoSuchBucket", `bucket "${bucket}" does not exist`, undefined, { cause: err });
      throw err;
    }
    try {
      const folders = openChain(bucketDir.last, segments.slice(1), 0o755);
      return new DirChain([...bucketDir.dirs, ...folders.dirs], folders.created);
    } catch (err) {
      bucketDir.close();
      const code = errnoOf(err);
      if (code === "ELOOP" || code === "ENOTDIR" || code === "EEXIST") throw await this.placementConflict(bucket, key);
      throw err;
    }
  }

  /** Removes the key's folders that are now empty, deepest first, through their open parents; never the bucket (segments[0]). */
  private async removeEmptyParents(chain: DirChain, segments: readonly string[]): Promise<void> {
    let changed: string | undefined;
    for (let i = segments.length - 1; i >= 1; i--) {
      const parent = chain.dirs[i - 1]!;
      try {
        await rmdir(parent.entry(segments[i]!));
      } catch (err) {
        const code = errnoOf(err);
        if (code === "ENOTEMPTY" || code === "EEXIST" || code === "EBUSY") break;
        if (code !== "ENOENT") throw fromFsError(err, "removing an empty directory", chain.dirs[i]!.path);
      }
      changed = parent.path;
    }
    await this.syncDirs(changed ? [changed] : []);
  }

  /**
   * fsync directories so renames, creations and removals in them survive a power cut. A directory
   * that is gone (a concurrent delete removed it once empty) needs none: whoever removed it syncs
   * its parent.
   */
  private async syncDirs(dirs: string[]): Promise<void> {
    if (this.durability !== "full") return;
    await Promise.all([...new Set(dirs)].map((dir) => this.dirSync.sync(dir)));
  }
}

/** Buffers one download cycles through: one being read while the others are written to the socket. */
const COPY_BUFFERS = 3;

/**
 * Copies a byte range from a file to a writable (an HTTP response) with COPY_BUFFERS reused 1 MiB
 * buffers. Node has no sendfile on its HTTP path; a read stream allocates a fresh buffer per read,
 * and at GiB/s that garbage costs more CPU in the collector than the copy itself. A buffer is
 * refilled only after the writable reports its previous contents flushed, which is also the
 * backpressure. Stops with an error when `out` closes early (the client went away).
 */
async function copyRange(fd: number, out: Writable, range: { start: number; end: number }, truncated: () => Error): Promise<number> {
  const buffers = Array.from({ length: COPY_BUFFERS }, () => Buffer.allocUnsafe(READ_BUFFER_BYTES));
  const flushed: Array<Promise<void> | undefined> = new Array<Promise<void> | undefined>(COPY_BUFFERS).fill(undefined);
  let closed: (err: Error) => void = () => undefined;
  const gone = new Promise<never>((_resolve, reject) => (closed = reject));
  gone.catch(() => undefined);
  const onClose = () => closed(new Error("the receiver closed before the whole range was sent"));
  out.once("close", onClose);
  try {
    let position = range.start;
    for (let i = 0; position <= range.end; i = (i + 1) % COPY_BUFFERS) {
      await Promise.race([flushed[i], gone]);
      const buffer = buffers[i]!;
      const bytesRead = await readFd(fd, buffer, 0, Math.min(buffer.length, range.end - position + 1), position);
      if (bytesRead === 0) throw truncated();
      const chunk = buffer.subarray(0, bytesRead);
      flushed[i] = new Promise<void>((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve())));
      flushed[i]!.catch(() => undefined);
      position += bytesRead;
    }
    await Promise.race([Promise.all(flushed.filter((p): p is Promise<void> => p !== undefined)), gone]);
    return range.end - range.start + 1;
  } finally {
    out.off("close", onClose);
  }
}

/** How often open() retries when the version it opened was replaced before its metadata was read. */
const OPEN_ATTEMPTS = 10;

/** Whether the file at `path` is still the one with these stats. */
async function isAtPath(path: string, stats: BigIntStats, calls: FileCalls): Promise<boolean> {
  const now = await calls.lstat(path).catch(() => undefined);
  return now !== undefined && now.ino === stats.ino && now.dev === stats.dev && now.mtimeNs === stats.mtimeNs && now.size === stats.size;
}

interface Pinned {
  stats: BigIntStats;
  /** Open on a regular file, so its inode stays allocated. */
  handle?: FileHandle;
}

/**
 * What is at `path` (not following a symlink); a regular file is also opened. Metadata records are
 * named by inode, and a freed inode can be reused at once by another writer's new temp file (ext4
 * does), whose record then has the same name: whoever removes the record of a replaced or deleted
 * version must hold the version open until the record is gone, or it may remove the new file's.
 */
async function pin(path: string, calls: FileCalls): Promise<Pinned | undefined> {
  const stats = await calls.lstat(path).catch((err: unknown) => {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return undefined;
    throw err;
  });
  if (!stats?.isFile()) return stats && { stats };
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    if (code === "EACCES" || code === "EPERM") return { stats };
    if (code === "ELOOP") return pin(path, calls);
    throw err;
  }
  try {
    const opened = await handle.stat({ bigint: true });
    if (opened.isFile()) return { stats: opened, handle };
    await handle.close();
    return { stats: opened };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/** The whole body, or its first `limit` bytes when it is longer (the caller then sees the length is wrong). */
async function readAtMost(body: Readable | AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= limit) break;
  }
  return Buffer.concat(chunks, Math.min(length, limit));
}

/** After `mkdir -p` created `first` … `deepest`, the directories whose entries changed. */
function newDirParents(first: string, deepest: string): string[] {
  const dirs = [deepest];
  for (let dir = deepest; dir !== dirname(first); dir = dirname(dir)) dirs.push(dirname(dir));
  return dirs;
}

/** The folders a writable store holds open for its lifetime, to reach everything it writes (see openDir.ts). */
interface WriteFolders {
  root: OpenDir;
  meta: OpenDir;
  /** tmp/, which holds a folder per instance. */
  tmp: OpenDir;
  /** This instance's folder in tmp/: its temp files. */
  own: OpenDir;
  instance: string;
  close(): void;
}

function openWriteFolders(layout: Layout, instance: string): WriteFolders {
  const root = OpenDir.open(layout.root);
  const chains: DirChain[] = [];
  const close = () => {
    for (const chain of chains) chain.close();
    root.close();
  };
  try {
    if (!existsSync(root.entry("."))) throw new StorageError("Io", "the store writes through /proc/self/fd (Linux), which is not mounted here", layout.root);
    const tmp = openChain(root, [INTERNAL_DIR, "tmp"], 0o700);
    chains.push(tmp);
    const meta = openChain(tmp.dirs[0]!, ["meta"], 0o700);
    chains.push(meta);
    const own = openChain(tmp.last, [instance], 0o700);
    chains.push(own);
    return { root, meta: meta.last, tmp: tmp.last, own: own.last, instance, close };
  } catch (err) {
    close();
    throw err;
  }
}

const silentLog = { warn: () => undefined } as unknown as Logger;
