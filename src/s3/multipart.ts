import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Logger } from "../server/logger.js";
import { StorageError } from "../storage/errors.js";
import type { HashPool } from "../storage/hashPool.js";
import { OneAtATime } from "../storage/oneAtATime.js";
import { ObjectStore, type Durability, type PublishCondition, type PutOptions, type PutResult } from "../storage/store.js";
import { COMPLETED_RETENTION_MS, CompletedUploads, partsDigest, type CompletedUpload } from "./completedUploads.js";
import { S3Error } from "./errors.js";
import { compositeChecksum, type ChecksumType } from "./multipartChecksums.js";
import { PartSlots } from "./partSlots.js";
import type { ChecksumAlgorithm } from "./payload.js";

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
  /** Cache-Control, Content-Disposition, Content-Language, Expires. */
  contentHeaders?: Record<string, string>;
  /** Lowercase (crc32, …); older records have it uppercase. */
  checksumAlgorithm?: string;
  checksumType?: ChecksumType;
}

/** One part as CompleteMultipartUpload names it. */
export interface RequestedPart {
  partNumber: number;
  etag: string;
  /** Checksum<Algorithm> elements of the part, algorithm lowercase → base64. */
  checksums?: Record<string, string>;
}

export interface CompleteOptions {
  /** If-None-Match: * / If-Match of the Complete request, checked when the object is published. */
  condition?: PublishCondition;
  /** The whole-object checksum the Complete request declares (x-amz-checksum-<algorithm>). */
  checksum?: { algorithm: ChecksumAlgorithm; value: string; type: ChecksumType };
  /** Called when the part list has been checked and the (long) assembly starts. */
  onAssemble?: () => void;
}

/** What Complete answers: the object's ETag ("-N" form) and checksums. */
export interface CompleteResult {
  etag: string;
  size: number;
  lastModified: Date;
  checksums: Record<string, string>;
  checksumType?: ChecksumType;
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: Date;
  checksums: Record<string, string>;
  /** Where a part written in place starts in the upload's data file (see PartSlots). */
  offset?: number;
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
  /** Completes of one upload id run one after another, so a concurrent second one sees the first's result. */
  private readonly completing = new OneAtATime();

  private readonly slots: PartSlots;

  private constructor(
    readonly parts: ObjectStore,
    private readonly objects: ObjectStore,
    private readonly minPartBytes: number,
    private readonly completed: CompletedUploads,
    shared: boolean,
  ) {
    this.slots = new PartSlots(parts, !shared);
  }

  static async open(
    objects: ObjectStore,
    options: { hashPool: HashPool; durability: Durability; log?: Logger; minPartBytes?: number; shared?: boolean },
  ): Promise<MultipartUploads> {
    const root = join(objects.layout.internal, "uploads");
    await mkdir(root, { recursive: true, mode: 0o700 });
    const parts = await ObjectStore.open(root, { hashPool: options.hashPool, durability: options.durability, log: options.log, shared: options.shared });
    // Beside the parts store's own temp and metadata folders: never a bucket, so never an upload.
    const completed = new CompletedUploads(join(parts.layout.internal, "completed"), options.durability);
    await completed.open();
    return new MultipartUploads(parts, objects, options.minPartBytes ?? MIN_PART_BYTES, completed, options.shared ?? false);
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

  /** The upload's record; NoSuchUpload unless the upload exists for this bucket and key. */
  async check(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    return this.record(bucket, key, uploadId);
  }

  async uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Readable | AsyncIterable<Uint8Array>, options: PutOptions): Promise<PutResult> {
    await this.record(bucket, key, uploadId);
    checkPartNumber(partNumber);
    // A part number is either in place or an object; the other kind of an earlier upload of it goes first.
    const offset = this.slots.place(uploadId, partNumber, options.expectedSize, this.minPartBytes);
    if (offset !== undefined) {
      await this.parts.delete(uploadId, partKey(partNumber));
      return this.slots.write(uploadId, partNumber, offset, body, options);
    }
    await this.slots.forget(uploadId, partNumber);
    return this.parts.put(uploadId, partKey(partNumber), body, options);
  }

  async listParts(bucket: string, key: string, uploadId: string): Promise<{ record: UploadRecord; parts: PartInfo[] }> {
    const record = await this.record(bucket, key, uploadId);
    const byNumber = new Map<number, PartInfo>();
    for (const slot of await this.slots.records(uploadId)) {
      byNumber.set(slot.partNumber, { partNumber: slot.partNumber, etag: slot.etag, size: slot.size, lastModified: new Date(slot.lastModified), checksums: slot.checksums, offset: slot.offset });
    }
    let token: string | undefined;
    do {
      const page = await this.parts.list(uploadId, { prefix: "part/", continuationToken: token, maxKeys: 1000 });
      for (const listed of page.objects) {
        const info = await this.parts.head(uploadId, listed.key).catch((err: unknown) => {
          if (err instanceof StorageError && err.code === "NoSuchKey") return undefined;
          throw err;
        });
        if (info?.etag) {
          const partNumber = Number(listed.key.slice(5));
          byNumber.set(partNumber, { partNumber, etag: info.etag, size: info.size, lastModified: info.lastModified, checksums: info.checksums });
        }
      }
      token = page.nextContinuationToken;
    } while (token);
    return { record, parts: [...byNumber.values()].sort((a, b) => a.partNumber - b.partNumber) };
  }

  /**
   * Checks the client's part list, assembles the object, remembers the completion, and removes the
   * upload. A retry of a completed upload with the same part list gets the same answer (S3
   * CompleteMultipartUpload: a retry of a completed upload returns 200 with the same ETag); with
   * another list, NoSuchUpload as before.
   */
  async complete(bucket: string, key: string, uploadId: string, requested: readonly RequestedPart[], options: CompleteOptions = {}): Promise<CompleteResult> {
    return this.completing.run(uploadId, () => this.completeNow(bucket, key, uploadId, requested, options));
  }

  private async completeNow(bucket: string, key: string, uploadId: string, requested: readonly RequestedPart[], options: CompleteOptions): Promise<CompleteResult> {
    const done = /^[0-9a-f]{32}$/.test(uploadId) ? await this.completed.get(uploadId) : undefined;
    if (done) {
      if (done.bucket !== bucket || done.key !== key || done.partsDigest !== partsDigest(requested)) throw noSuchUpload();
      return { etag: done.etag, size: done.size, lastModified: new Date(done.lastModified), checksums: done.checksums, ...(done.checksumType ? { checksumType: done.checksumType } : {}) };
    }
    const { record, parts } = await this.listParts(bucket, key, uploadId);
    if (requested.length === 0) throw new S3Error("MalformedXML", "the part list is empty: name at least one part");
    const byNumber = new Map(parts.map((p) => [p.partNumber, p]));
    const chosen: PartInfo[] = [];
    requested.forEach(({ partNumber, etag, checksums }, index) => {
      if (index > 0 && partNumber <= requested[index - 1]!.partNumber) {
        throw new S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.");
      }
      const part = byNumber.get(partNumber);
      if (!part || part.etag !== etag.replace(/^"|"$/g, "").toLowerCase()) {
        throw new S3Error("InvalidPart", `part ${partNumber} was not uploaded, or its ETag is not ${etag.slice(0, 70)}`);
      }
      for (const [algorithm, value] of Object.entries(checksums ?? {})) {
        if (part.checksums[algorithm] !== value.trim()) throw new S3Error("InvalidPart", `part ${partNumber}'s ${algorithm.toUpperCase()} checksum is not ${value.slice(0, 70)}`);
      }
      chosen.push(part);
    });
    chosen.slice(0, -1).forEach((part) => {
      if (part.size < this.minPartBytes) {
        throw new S3Error("EntityTooSmall", `part ${part.partNumber} is ${part.size} bytes; every part but the last must be at least ${this.minPartBytes} bytes`);
      }
    });
    const plan = await this.checksumPlan(record, chosen, options.checksum);
    const etag = `${createHash("md5")
      .update(Buffer.concat(chosen.map((p) => Buffer.from(p.etag, "hex"))))
      .digest("hex")}-${chosen.length}`;
    options.onAssemble?.();
    // Fails before the assembly when it must (the store checks again, atomically, when it publishes).
    if (options.condition) await this.precheck(bucket, key, options.condition);
    const partsStore = this.parts;
    const slots = this.slots;
    async function* assembled(): AsyncGenerator<Buffer> {
      for (const part of chosen) {
        if (part.offset !== undefined) {
          yield* slots.stream(uploadId, { offset: part.offset, size: part.size });
          continue;
        }
        const object = await partsStore.open(uploadId, partKey(part.partNumber));
        if (object.info.size !== part.size) throw new S3Error("InvalidPart", `part ${part.partNumber} changed while the upload was being completed`);
        yield* object.stream() as AsyncIterable<Buffer>;
      }
    }
    const checksums: Record<string, string> = { ...plan.composite };
    const size = chosen.reduce((sum, p) => sum + p.size, 0);
    // The parts fill the upload's data file in order: it becomes the object, with nothing copied.
    // Only when no later part is recorded: cutting the file drops what lies past the last chosen part.
    const inPlace = !plan.fullObject && PartSlots.inPlace(chosen) && parts.every((p) => p.partNumber <= chosen.length) && (await this.slots.cut(uploadId, size));
    const common = {
      etag,
      contentType: record.contentType,
      contentEncoding: record.contentEncoding,
      contentHeaders: record.contentHeaders,
      userMetadata: record.userMetadata,
      partSizes: chosen.map((p) => p.size),
      digests: plan.fullObject ? [plan.fullObject] : [],
      checksums,
      ...(plan.type ? { checksumType: plan.type } : {}),
      condition: options.condition,
    };
    // A crash after an in-place publish and before the upload was removed: the key already holds this object.
    const published = !inPlace && !plan.fullObject && PartSlots.inPlace(chosen) && !(await this.slots.hasData(uploadId)) ? await this.alreadyPublished(bucket, key, etag, size) : undefined;
    const result =
      published ??
      (inPlace
        ? await this.slots.publishData(uploadId, (from) => this.objects.publishFile(bucket, key, from, common))
        : await this.objects.put(bucket, key, assembled(), {
            ...common,
            expectedSize: size,
            verify: ({ digests }) => {
              if (!plan.fullObject) return;
              const actual = digests[plan.fullObject]!.toString("base64");
              if (plan.expected !== undefined && plan.expected !== actual) {
                throw new S3Error("BadDigest", `The ${plan.fullObject.toUpperCase()} you specified did not match the calculated checksum.`);
              }
              checksums[plan.fullObject] = actual;
            },
          }));
    await this.completed.add(uploadId, {
      bucket,
      key,
      etag: result.etag,
      size: result.size,
      lastModified: result.lastModified.getTime(),
      checksums: result.checksums,
      ...(plan.type ? { checksumType: plan.type } : {}),
      partsDigest: partsDigest(requested),
    } satisfies CompletedUpload);
    await this.remove(uploadId);
    return { etag: result.etag, size: result.size, lastModified: result.lastModified, checksums: result.checksums, ...(plan.type ? { checksumType: plan.type } : {}) };
  }

  /**
   * Which whole-object checksum the object gets, and what the client said it must be. COMPOSITE:
   * computed from the parts' checksums now (every part needs one); FULL_OBJECT: computed while the
   * object is assembled. A declared value of another algorithm or type than the upload's is
   * InvalidRequest; a wrong value BadDigest (S3 CompleteMultipartUpload).
   */
  private async checksumPlan(
    record: UploadRecord,
    chosen: readonly PartInfo[],
    declared: CompleteOptions["checksum"],
  ): Promise<{ type?: ChecksumType; composite?: Record<string, string>; fullObject?: ChecksumAlgorithm; expected?: string }> {
    const uploadAlgorithm = record.checksumAlgorithm?.toLowerCase() as ChecksumAlgorithm | undefined;
    const algorithm = uploadAlgorithm ?? declared?.algorithm;
    if (!algorithm) return {};
    if (declared && uploadAlgorithm && declared.algorithm !== uploadAlgorithm) {
      throw new S3Error("InvalidRequest", `Checksum Type mismatch occurred, expected checksum Type: ${uploadAlgorithm}, actual checksum Type: ${declared.algorithm}`);
    }
    const type = record.checksumType ?? declared?.type ?? "COMPOSITE";
    if (declared && declared.type !== type) throw new S3Error("InvalidRequest", `The upload was created with the ${type} checksum type; the Complete request declares ${declared.type}`);
    if (type === "FULL_OBJECT") return { type, fullObject: algorithm, expected: declared?.value };
    const missing = chosen.find((p) => p.checksums[algorithm] === undefined);
    if (missing) throw new S3Error("InvalidRequest", `part ${missing.partNumber} has no ${algorithm.toUpperCase()} checksum, which a COMPOSITE checksum needs`);
    const value = await compositeChecksum(
      algorithm,
      chosen.map((p) => p.checksums[algorithm]!),
    );
    if (declared && declared.value !== value) throw new S3Error("BadDigest", `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
    return { type, composite: { [algorithm]: value } };
  }

  /** The object at the key, if it is the one this Complete would publish (same multipart ETag and size). */
  private async alreadyPublished(bucket: string, key: string, etag: string, size: number): Promise<PutResult | undefined> {
    const current = await this.objects.head(bucket, key).catch(() => undefined);
    return current?.etag === etag && current.size === size ? { ...current, etag, digests: {} } : undefined;
  }

  private async precheck(bucket: string, key: string, condition: PublishCondition): Promise<void> {
    const current = await this.objects.head(bucket, key).catch((err: unknown) => {
      if (err instanceof StorageError && (err.code === "NoSuchKey" || err.code === "KeyConflict")) return undefined;
      throw err;
    });
    if (condition.ifAbsent && current) throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold (If-None-Match: the key exists)");
    if (condition.ifEtag !== undefined && !current) throw new S3Error("NoSuchKey", "The specified key does not exist.");
    if (condition.ifEtag !== undefined && current?.etag !== condition.ifEtag) throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold (If-Match)");
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

  /** Aborts uploads with no activity (no part written) for `maxAgeMs`, and forgets old completions; returns how many uploads. */
  async reclaim(maxAgeMs: number, now = Date.now()): Promise<number> {
    await this.completed.expire(Math.min(maxAgeMs, COMPLETED_RETENTION_MS), now);
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
    const folders = await Promise.all(["part", "slot"].map((name) => lstat(join(this.parts.layout.bucketDir(uploadId), name)).catch(() => undefined)));
    return Math.max(created.getTime(), ...folders.map((f) => f?.mtimeMs ?? 0));
  }

  private async remove(uploadId: string): Promise<void> {
    this.records.delete(uploadId);
    this.slots.forgetUpload(uploadId);
    await this.parts.purgeBucket(uploadId).catch((err: unknown) => {
      if (err instanceof StorageError && err.code === "NoSuchBucket") return;
      throw err;
    });
  }

  private async record(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    const record = /^[0-9a-f]{32}$/.test(uploadId) ? await this.readRecord(uploadId).catch(() => undefined) : undefined;
    if (!record || record.bucket !== bucket || record.key !== key) throw noSuchUpload();
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

function noSuchUpload(): S3Error {
  return new S3Error("NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.");
}

export function checkPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) throw new S3Error("InvalidArgument", `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
}
