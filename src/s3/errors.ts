import { clientAborted, StorageError, type StorageErrorCode } from "../storage/errors.js";
import { ChunkedEncodingError } from "./awsChunked.js";

/** The S3 error codes this server answers with, and their HTTP status. */
const STATUS = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IllegalLocationConstraintException: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidLocationConstraint: 400,
  InvalidPart: 400,
  InvalidPartNumber: 416,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidURI: 400,
  KeyTooLongError: 400,
  /** Not an AWS code: a key that needs a file where a folder is, or the reverse (objects are plain files). */
  KeyConflict: 409,
  MalformedXML: 400,
  MethodNotAllowed: 405,
  MetadataTooLarge: 400,
  MissingContentLength: 411,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  RequestTimeout: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
  InsufficientStorage: 507,
} as const;

export type S3ErrorCode = keyof typeof STATUS;

/** Every code an error document of this server can carry. */
export const S3_ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(STATUS));

/** An S3 error answer: code, HTTP status, message, and the extra elements some codes carry. */
export class S3Error extends Error {
  readonly status: number;

  constructor(
    readonly code: S3ErrorCode,
    message: string,
    /** Extra elements for the XML body, e.g. Region, RequestTime, ServerTime. */
    readonly extra: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "S3Error";
    this.status = STATUS[code];
  }
}

const FROM_STORAGE: Record<StorageErrorCode, S3ErrorCode> = {
  InvalidArgument: "InvalidArgument",
  NoSpace: "InsufficientStorage",
  PermissionDenied: "InternalError",
  ReadOnly: "AccessDenied",
  CrossDevice: "InternalError",
  Io: "InternalError",
  NoSuchBucket: "NoSuchBucket",
  NoSuchKey: "NoSuchKey",
  InvalidKey: "InvalidArgument",
  InvalidBucketName: "InvalidBucketName",
  KeyConflict: "KeyConflict",
  BadDigest: "BadDigest",
  PreconditionFailed: "PreconditionFailed",
  IncompleteBody: "IncompleteBody",
  EntityTooLarge: "EntityTooLarge",
  BucketNotEmpty: "BucketNotEmpty",
  BucketAlreadyExists: "BucketAlreadyOwnedByYou",
};

/**
 * Any failure as an S3 error. Store failures keep their precise message (which key, which limit);
 * server-side problems (permissions, I/O) become InternalError with a generic message, because
 * the client cannot fix them and the paths in the message are the admin's business (logged).
 */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  if (err instanceof ChunkedEncodingError) {
    if (err.code === "SignatureDoesNotMatch") return new S3Error("SignatureDoesNotMatch", err.message);
    return new S3Error(err.code === "IncompleteBody" ? "IncompleteBody" : "InvalidRequest", err.message);
  }
  if (err instanceof StorageError) {
    const code = FROM_STORAGE[err.code];
    if (code === "InternalError") return new S3Error(code, "the storage service could not complete the request; see its log", {}, { cause: err });
    if (code === "InsufficientStorage") return new S3Error(code, "the storage volume is full", {}, { cause: err });
    return new S3Error(code, err.reason, {}, { cause: err });
  }
  if (clientAborted(err)) return new S3Error("IncompleteBody", "the request body ended early (the client closed the connection)", {}, { cause: err });
  return new S3Error("InternalError", "the storage service failed unexpectedly; see its log", {}, { cause: err });
}
