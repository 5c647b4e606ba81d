import { S3Error } from "./errors.js";

/**
 * Conditional requests, as pure decisions. S3 follows RFC 9110 section 13.2.2 for reads: If-Match
 * before If-Unmodified-Since, If-None-Match before If-Modified-Since, each date condition ignored
 * when its ETag condition is present. No condition is ever ignored: what is not implemented is refused.
 */

export interface Validators {
  /** The ETag without quotes; undefined for files the store did not write. */
  etag?: string;
  lastModified: Date;
}

export interface ConditionHeaders {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

/** "abc", abc, W/"abc" → abc. */
export function bareEtag(text: string): string {
  return text.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

function listMatches(list: string, etag: string | undefined): boolean {
  return list.split(",").some((t) => t.trim() === "*" || (etag !== undefined && bareEtag(t) === etag));
}

/** HTTP dates have second precision: Last-Modified is compared at that precision. */
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000) * 1000;
}

/** GET/HEAD: proceed, 304 Not Modified, or 412 Precondition Failed. Unparsable dates are ignored (RFC 9110). */
export function readPrecondition(h: ConditionHeaders, object: Validators): "proceed" | 304 | 412 {
  const modified = seconds(object.lastModified);
  const ifModifiedSince = Date.parse(h.ifModifiedSince ?? "");
  const ifUnmodifiedSince = Date.parse(h.ifUnmodifiedSince ?? "");
  if (h.ifMatch !== undefined && !listMatches(h.ifMatch, object.etag)) return 412;
  if (h.ifMatch === undefined && !Number.isNaN(ifUnmodifiedSince) && modified > ifUnmodifiedSince) return 412;
  if (h.ifNoneMatch !== undefined && listMatches(h.ifNoneMatch, object.etag)) return 304;
  if (h.ifNoneMatch === undefined && !Number.isNaN(ifModifiedSince) && modified <= ifModifiedSince) return 304;
  return "proceed";
}

/**
 * CopyObject and UploadPartCopy, `x-amz-copy-source-if-*`: the same rules as a read, but every
 * failure is 412 (S3: "if-none-match false and if-modified-since true: 412"; "if-match true and
 * if-unmodified-since false: the copy proceeds").
 */
export function copySourcePrecondition(h: ConditionHeaders, object: Validators): boolean {
  return readPrecondition(h, object) === "proceed";
}

/** A conditional write (PutObject, CompleteMultipartUpload, CopyObject's destination): what must hold at publish time. */
export interface WriteCondition {
  /** If-None-Match: * — only if no object has the key. */
  ifAbsent?: boolean;
  /** If-Match: <etag> — only if the current object has this ETag. */
  ifEtag?: string;
}

/**
 * S3 conditional writes: `If-None-Match` accepts only `*` (anything else is 501 NotImplemented,
 * as S3 answers), `If-Match` one ETag. Undefined when the request has neither.
 */
export function writeConditionOf(ifMatch: string | undefined, ifNoneMatch: string | undefined): WriteCondition | undefined {
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
  const condition: WriteCondition = {};
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== "*") throw new S3Error("NotImplemented", "A header you provided implies functionality that is not implemented: If-None-Match on a write accepts only *");
    condition.ifAbsent = true;
  }
  if (ifMatch !== undefined) {
    const etag = bareEtag(ifMatch);
    if (etag === "" || etag === "*" || ifMatch.includes(",")) throw new S3Error("InvalidArgument", "If-Match on a write takes exactly one ETag");
    condition.ifEtag = etag;
  }
  return condition;
}

/**
 * Whether a write condition holds for the current object (undefined: none). S3: If-None-Match: *
 * on an existing key is 412; If-Match on a missing key is 404 NoSuchKey, on another ETag 412.
 */
export function checkWriteCondition(condition: WriteCondition | undefined, current: { etag?: string } | undefined): void {
  if (!condition) return;
  if (condition.ifAbsent && current) throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold (If-None-Match: the key exists)");
  if (condition.ifEtag !== undefined) {
    if (!current) throw new S3Error("NoSuchKey", "The specified key does not exist.");
    if (current.etag !== condition.ifEtag) throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold (If-Match)");
  }
}
