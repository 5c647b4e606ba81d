import { Readable } from "node:stream";
import type { ListOptions, ListResult } from "../storage/listing.js";
import type { BucketInfo, ObjectInfo, ObjectStore, OpenObject, PutOptions, PutResult } from "../storage/store.js";
import type { Body, S3Backend } from "./backend.js";
import type { CompleteOptions, CompleteResult, MultipartUploads, PartInfo, RequestedPart, UploadRecord } from "./multipart.js";

/** The S3 backend over the volume: objects and buckets in the ObjectStore, uploads in MultipartUploads. Delegation only. */
export class StoreBackend implements S3Backend {
  constructor(
    private readonly store: ObjectStore,
    private readonly uploads: MultipartUploads,
  ) {}

  get maxObjectBytes(): number {
    return this.store.maxObjectBytes;
  }

  listBuckets(): Promise<BucketInfo[]> {
    return this.store.listBuckets();
  }

  bucketExists(bucket: string): Promise<boolean> {
    return this.store.bucketExists(bucket);
  }

  createBucket(bucket: string): Promise<void> {
    return this.store.createBucket(bucket);
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.store.deleteBucket(bucket);
    // Unfinished uploads into the bucket go with it.
    for (const { uploadId, record } of await this.uploads.list(bucket)) await this.uploads.abort(bucket, record.key, uploadId);
  }

  putObject(bucket: string, key: string, body: Body, options: PutOptions): Promise<PutResult> {
    return this.store.put(bucket, key, body, options);
  }

  getObject(bucket: string, key: string): Promise<OpenObject> {
    return this.store.open(bucket, key);
  }

  headObject(bucket: string, key: string): Promise<ObjectInfo> {
    return this.store.head(bucket, key);
  }

  deleteObject(bucket: string, key: string, condition: { ifEtag?: string }): Promise<boolean> {
    return this.store.delete(bucket, key, condition);
  }

  listObjects(bucket: string, options: ListOptions): Promise<ListResult> {
    return this.store.list(bucket, options);
  }

  copyObject(source: OpenObject, bucket: string, key: string, options: PutOptions): Promise<PutResult> {
    return this.store.put(bucket, key, source.stream(), options);
  }

  createMultipartUpload(record: Omit<UploadRecord, "initiated">): Promise<string> {
    return this.uploads.create(record);
  }

  getMultipartUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    return this.uploads.check(bucket, key, uploadId);
  }

  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, options: PutOptions): Promise<PutResult> {
    return this.uploads.uploadPart(bucket, key, uploadId, partNumber, body, options);
  }

  async uploadPartCopy(bucket: string, key: string, uploadId: string, partNumber: number, source: OpenObject, range: { start: number; end: number }, options: PutOptions): Promise<PutResult> {
    // A zero-byte source has no range to stream.
    const empty = range.end < range.start;
    if (empty) await source.close();
    return this.uploads.uploadPart(bucket, key, uploadId, partNumber, empty ? Readable.from([]) : source.stream(range), options);
  }

  completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: readonly RequestedPart[], options: CompleteOptions): Promise<CompleteResult> {
    return this.uploads.complete(bucket, key, uploadId, parts, options);
  }

  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    return this.uploads.abort(bucket, key, uploadId);
  }

  listParts(bucket: string, key: string, uploadId: string): Promise<{ record: UploadRecord; parts: PartInfo[] }> {
    return this.uploads.listParts(bucket, key, uploadId);
  }

  listMultipartUploads(bucket: string): Promise<Array<{ uploadId: string; record: UploadRecord }>> {
    return this.uploads.list(bucket);
  }
}
