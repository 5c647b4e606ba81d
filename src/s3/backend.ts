import type { Readable } from "node:stream";
import type { ListOptions, ListResult } from "../storage/listing.js";
import type { BucketInfo, ObjectInfo, OpenObject, PutOptions, PutResult } from "../storage/store.js";
import type { CompleteOptions, CompleteResult, PartInfo, RequestedPart, UploadRecord } from "./multipart.js";

export type Body = Readable | AsyncIterable<Uint8Array>;

/**
 * Everything the S3 handlers act through: buckets, objects and multipart uploads behind one
 * interface (as versitygw's backend.Backend), so a handler never knows which store holds what.
 * Multipart uploads and their errors (NoSuchUpload, InvalidPart, …) belong to the backend.
 */
export interface S3Backend {
  /** The largest body one PutObject or part may have. */
  readonly maxObjectBytes: number;

  listBuckets(): Promise<BucketInfo[]>;
  bucketExists(bucket: string): Promise<boolean>;
  createBucket(bucket: string): Promise<void>;
  /** Deletes an empty bucket and aborts the uploads still open in it. */
  deleteBucket(bucket: string): Promise<void>;

  putObject(bucket: string, key: string, body: Body, options: PutOptions): Promise<PutResult>;
  /** Opens the current version for GET (and for a copy source): the caller streams or closes it. */
  getObject(bucket: string, key: string): Promise<OpenObject>;
  headObject(bucket: string, key: string): Promise<ObjectInfo>;
  /** False if there was nothing; with `ifEtag` only that version goes (PreconditionFailed, NoSuchKey). */
  deleteObject(bucket: string, key: string, condition: { ifEtag?: string }): Promise<boolean>;
  listObjects(bucket: string, options: ListOptions): Promise<ListResult>;
  /** Writes an opened source (its conditions already checked, so exactly that version) to the key. */
  copyObject(source: OpenObject, bucket: string, key: string, options: PutOptions): Promise<PutResult>;

  createMultipartUpload(record: Omit<UploadRecord, "initiated">): Promise<string>;
  /** The upload's record; NoSuchUpload unless it exists for this bucket and key. */
  getMultipartUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord>;
  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, options: PutOptions): Promise<PutResult>;
  /** Writes `range` (inclusive) of an opened source as the part; an empty range (end < start) writes an empty part. */
  uploadPartCopy(bucket: string, key: string, uploadId: string, partNumber: number, source: OpenObject, range: { start: number; end: number }, options: PutOptions): Promise<PutResult>;
  completeMultipartUpload(bucket: string, key: string, uploadId: string, parts: readonly RequestedPart[], options: CompleteOptions): Promise<CompleteResult>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
  listParts(bucket: string, key: string, uploadId: string): Promise<{ record: UploadRecord; parts: PartInfo[] }>;
  /** Uploads in a bucket, by key then upload id. */
  listMultipartUploads(bucket: string): Promise<Array<{ uploadId: string; record: UploadRecord }>>;
}
