import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Logger } from "../server/logger.js";
import { StorageError } from "../storage/errors.js";
import type { HashPool } from "../storage/hashPool.js";
import { ObjectStore, type Durability, type PutOptions, type PutResult } from "../storage/store.js";
import { S3Error } from "./errors.js";

/** S3's limits: parts 1..10,000; every part but the last at least 5 MiB. */
export const MAX_PART_NUMBER = 10_000;
export const MIN_PART_BYTES = 5 * 1024 * 1024;

/** What CreateMultipartUpload recorded, for Complete to apply to the object. */
export interface UploadRecord {
  bucket: string;
  key: string;
  initiated: string;
  contentType?: string;
  contentEncoding?: string;
  userMetadata: Record<string, string>;
  checksumAlgorithm?: string;
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: Date;
  checksums: Record<string, string>;
}

const RECORD_KEY = "upload.json";
const partKey = (n: number) => `part/${String(n).padStart(5, "0")}`;

/**
 * Multipart uploads live in a store of their own under the internal folder
 * (`<root>/.app-snapshots/uploads/`), one bucket per upload id: parts get the same atomic, durable,
 * hashed writes as objects, and nothing of an unfinished upload shows in any listing. Complete
 * streams the parts into one object through the main store (so the object appears atomically) and
 * then removes the upload.
 */
export class MultipartUploads {
  private readonly records = new Map<string, UploadRecord>();

  private constructor(
    readonly parts: ObjectStore,
    private readonly objects: ObjectStore,
    private readonly minPartBytes: number,
  ) {}

  static async open(
    objects: ObjectStore,
    options: { hashPool: HashPool; durability: Durability; log?: Logger; minPartBytes?: number; shared?: boolean },
  ): Promise<MultipartUploads> {
    const root = join(objects.layout.internal, "uploads");
    await mkdir(root, { recursive: true, mode: 0o700 });
    const parts = await ObjectStore.open(root, { hashPool: options.hashPool, durability: options.durability, log: options.log, shared: options.shared });
    return new MultipartUploads(parts, objects, options.minPartBytes ?? MIN_PART_BYTES);
  }

  async close(): Promise<void> {
    await this.parts.close();
  }

  async create(record: Omit<UploadRecord, "initiated">): Promise<string> {
    // Fails now, not at Complete, when the bucket is missing or the key is invalid.
    if (!(await this.objects.bucketExists(record.bucket))) throw new S3Error("NoSuchBucket", `bucket "${record.bucket}" does not exist`);
    const uploadId = randomBytes(16).toString("hex");
    await this.parts.createBucket(uploadId);
    const full: UploadRecord = { ...record, initiated: new Date().toISOString() };
    await this.parts.put(uploadId, RECORD_KEY, Readable.from([Buffer.from(JSON.stringify(full))]), { contentType: "application/json" });
    this.records.set(uploadId, full);
    return uploadId;
  }

  /** Fails with NoSuchUpload unless the upload exists for this bucket and key. */
  async check(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.record(bucket, key, uploadId);
  }

  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Readable, options: PutOptions): Promise<PutResult> {
    await this.record(bucket, key, uploadId);
    checkPartNumber(partNumber);
    return this.parts.put(uploadId, partKey(partNumber), body, options);
  }

  async listParts(bucket: string, key: string, uploadId: string): Promise<{ record: UploadRecord; parts: PartInfo[] }> {
    const record = await this.record(bucket, key, uploadId);
    const parts: PartInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.parts.list(uploadId, { prefix: "part/", continuationToken: token, maxKeys: 1000 });
      for (const listed of page.objects) {
        const info = await this.parts.head(uploadId, listed.key).catch((err: unknown) => {
          if (err instanceof StorageError && err.code === "NoSuchKey") return undefined;
          throw err;
        });
        if (info?.md5) {
          parts.push({ partNumber: Number(listed.key.slice(5)), etag: info.md5, size: info.size, lastModified: info.lastModified, checksums: info.checksums });
        }
      }
      token = page.nextContinuationToken;
    } while (token);
    return { record, parts };
  }

  /** Checks the client's part list, assembles the object, and removes the upload. */
  async complete(bucket: string, key: string, uploadId: string, requested: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<PutResult> {
    const { record, parts } = await this.listParts(bucket, key, uploadId);
    if (requested.length === 0) throw new S3Error("MalformedXML", "the part list is empty: name at least one part");
    const byNumber = new Map(parts.map((p) => [p.partNumber, p]));
    const chosen: PartInfo[] = [];
    requested.forEach(({ partNumber, etag }, index) => {
      if (index > 0 && partNumber <= requested[index - 1]!.partNumber) {
        throw new S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.");
      }
      const part = byNumber.get(partNumber);
      if (!part || part.etag !== etag.replace(/^"|"$/g, "").toLowerCase()) {
        throw new S3Error("InvalidPart", `part ${partNumber} was not uploaded, or its ETag is not ${etag.slice(0, 70)}`);
      }
      chosen.push(part);
    });
    chosen.slice(0, -1).forEach((part) => {
      if (part.size < this.minPartBytes) {
        throw new S3Error("EntityTooSmall", `part ${part.partNumber} is ${part.size} bytes; every part but the last must be at least ${this.minPartBytes} bytes`);
      }
    });
    const etag = `${createHash("md5")
      .update(Buffer.concat(chosen.map((p) => Buffer.from(p.etag, "hex"))))
      .digest("hex")}-${chosen.length}`;
    const partsStore = this.parts;
    async function* assembled(): AsyncGenerator<Buffer> {
      for (const part of chosen) {
        const object = await partsStore.open(uploadId, partKey(part.partNumber));
        if (object.info.size !== part.size) throw new S3Error("InvalidPart", `part ${part.partNumber} changed while the upload was being completed`);
        yield* object.stream() as AsyncIterable<Buffer>;
      }
    }
    const result = await this.objects.put(bucket, key, assembled(), {
      etag,
      expectedSize: chosen.reduce((sum, p) => sum + p.size, 0),
      contentType: record.contentType,
      contentEncoding: record.contentEncoding,
      userMetadata: record.userMetadata,
    });
    await this.remove(uploadId);
    return result;
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.record(bucket, key, uploadId);
    await this.remove(uploadId);
  }

  /** Uploads in a bucket, by key then upload id (ListMultipartUploads). */
  async list(bucket: string): Promise<Array<{ uploadId: string; record: UploadRecord }>> {
    const uploads: Array<{ uploadId: string; record: UploadRecord }> = [];
    for (const { name } of await this.parts.listBuckets()) {
      const record = await this.readRecord(name).catch(() => undefined);
      if (record?.bucket === bucket) uploads.push({ uploadId: name, record });
    }
    return uploads.sort((a, b) => (a.record.key < b.record.key ? -1 : a.record.key > b.record.key ? 1 : a.uploadId < b.uploadId ? -1 : 1));
  }

  /** Aborts uploads with no activity (no part written) for `maxAgeMs`; returns how many. */
  async reclaim(maxAgeMs: number, now = Date.now()): Promise<number> {
    let reclaimed = 0;
    for (const { name, created } of await this.parts.listBuckets()) {
      const lastActivity = await this.lastActivity(name, created);
      if (now - lastActivity < maxAgeMs) continue;
      await this.remove(name).catch(() => undefined);
      reclaimed++;
    }
    return reclaimed;
  }

  /** The upload's creation, or the last time a part was added: the parts folder's mtime changes with each. */
  private async lastActivity(uploadId: string, created: Date): Promise<number> {
    const parts = await lstat(join(this.parts.layout.bucketDir(uploadId), "part")).catch(() => undefined);
    return Math.max(created.getTime(), parts?.mtimeMs ?? 0);
  }

  private async remove(uploadId: string): Promise<void> {
    this.records.delete(uploadId);
    await this.parts.purgeBucket(uploadId).catch((err: unknown) => {
      if (err instanceof StorageError && err.code === "NoSuchBucket") return;
      throw err;
    });
  }

  private async record(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    const record = /^[0-9a-f]{32}$/.test(uploadId) ? await this.readRecord(uploadId).catch(() => undefined) : undefined;
    if (!record || record.bucket !== bucket || record.key !== key) {
      throw new S3Error("NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.");
    }
    return record;
  }

  private async readRecord(uploadId: string): Promise<UploadRecord> {
    const cached = this.records.get(uploadId);
    if (cached) return cached;
    const object = await this.parts.open(uploadId, RECORD_KEY);
    const record = JSON.parse((await object.read({ start: 0, end: object.info.size - 1 })).toString("utf8")) as UploadRecord;
    this.records.set(uploadId, record);
    return record;
  }
}

export function checkPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) throw new S3Error("InvalidArgument", `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
}
