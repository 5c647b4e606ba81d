import { describe, expect, it } from "vitest";
import { ChunkedEncodingError, type ChunkedErrorCode } from "../../../src/s3/awsChunked.js";
import { S3Error, toS3Error, type S3ErrorCode } from "../../../src/s3/errors.js";
import { fromFsError, StorageError, type StorageErrorCode } from "../../../src/storage/errors.js";

const PATH = "/srv/backups/root/velero/backups/b1/.tmp-9f8e7d";

describe("S3Error", () => {
  const statuses: Array<[S3ErrorCode, number]> = [
    ["AccessDenied", 403],
    ["AuthorizationHeaderMalformed", 400],
    ["AuthorizationQueryParametersError", 400],
    ["BadDigest", 400],
    ["BucketAlreadyOwnedByYou", 409],
    ["BucketNotEmpty", 409],
    ["EntityTooLarge", 400],
    ["EntityTooSmall", 400],
    ["IncompleteBody", 400],
    ["InternalError", 500],
    ["InvalidAccessKeyId", 403],
    ["InvalidArgument", 400],
    ["InvalidBucketName", 400],
    ["InvalidDigest", 400],
    ["InvalidPart", 400],
    ["InvalidPartOrder", 400],
    ["InvalidRange", 416],
    ["InvalidRequest", 400],
    ["InvalidURI", 400],
    ["KeyTooLongError", 400],
    ["MalformedXML", 400],
    ["MethodNotAllowed", 405],
    ["MetadataTooLarge", 400],
    ["MissingContentLength", 411],
    ["NoSuchBucket", 404],
    ["NoSuchKey", 404],
    ["NoSuchUpload", 404],
    ["NotImplemented", 501],
    ["PreconditionFailed", 412],
    ["RequestTimeTooSkewed", 403],
    ["RequestTimeout", 400],
    ["ServiceUnavailable", 503],
    ["SignatureDoesNotMatch", 403],
    ["SlowDown", 503],
    ["XAmzContentSHA256Mismatch", 400],
    ["InsufficientStorage", 507],
  ];

  it.each(statuses)("%s has HTTP status %i", (code, status) => {
    const err = new S3Error(code, "why");
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    expect(err.message).toBe("why");
  });

  it("is an Error named S3Error with extras and a cause", () => {
    const cause = new Error("root");
    const err = new S3Error("RequestTimeTooSkewed", "skewed", { RequestTime: "20261122T101500Z" }, { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("S3Error");
    expect(err.extra).toEqual({ RequestTime: "20261122T101500Z" });
    expect(err.cause).toBe(cause);
    expect(new S3Error("NoSuchKey", "x").extra).toEqual({});
  });
});

describe("toS3Error", () => {
  it("passes S3Errors through unchanged", () => {
    const err = new S3Error("NoSuchUpload", "gone", { UploadId: "u" });
    expect(toS3Error(err)).toBe(err);
  });

  /** Store failures a client can act on keep the store's reason (never the path). */
  const clientFacing: Array<[StorageErrorCode, S3ErrorCode, number]> = [
    ["InvalidArgument", "InvalidArgument", 400],
    ["ReadOnly", "AccessDenied", 403],
    ["NoSuchBucket", "NoSuchBucket", 404],
    ["NoSuchKey", "NoSuchKey", 404],
    ["InvalidKey", "InvalidArgument", 400],
    ["InvalidBucketName", "InvalidBucketName", 400],
    // A file where a folder is, or the reverse: 409 with a code of its own (docs/s3.md).
    ["KeyConflict", "KeyConflict", 409],
    ["PreconditionFailed", "PreconditionFailed", 412],
    ["BadDigest", "BadDigest", 400],
    ["IncompleteBody", "IncompleteBody", 400],
    ["EntityTooLarge", "EntityTooLarge", 400],
    ["BucketNotEmpty", "BucketNotEmpty", 409],
    ["BucketAlreadyExists", "BucketAlreadyOwnedByYou", 409],
  ];

  it.each(clientFacing)("maps StorageError %s to %s (%i) with the reason and without the path", (storageCode, code, status) => {
    const cause = Object.assign(new Error("EIO"), { code: "EIO" });
    const storageError = new StorageError(storageCode, `the ${storageCode} reason`, PATH, { cause });
    expect(storageError.message).toContain(PATH);
    const err = toS3Error(storageError);
    expect(err).toBeInstanceOf(S3Error);
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toBe(`the ${storageCode} reason`);
    expect(err.message).not.toContain(PATH);
    expect(err.cause).toBe(storageError);
  });

  /** Server-side problems: generic messages, the details stay in the log (through the cause). */
  const serverSide: Array<[StorageErrorCode, S3ErrorCode, number, string]> = [
    ["PermissionDenied", "InternalError", 500, "the storage service could not complete the request; see its log"],
    ["CrossDevice", "InternalError", 500, "the storage service could not complete the request; see its log"],
    ["Io", "InternalError", 500, "the storage service could not complete the request; see its log"],
    ["NoSpace", "InsufficientStorage", 507, "the storage volume is full"],
  ];

  it.each(serverSide)("maps StorageError %s to %s (%i) with a generic message", (storageCode, code, status, message) => {
    const storageError = new StorageError(storageCode, `secret detail of ${PATH}`, PATH);
    const err = toS3Error(storageError);
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toBe(message);
    expect(err.cause).toBe(storageError);
  });

  it("never reveals the path of a filesystem failure, whatever the errno", () => {
    for (const errno of ["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EXDEV", "EIO", "ENOTDIR", "EMFILE"]) {
      const fsError = Object.assign(new Error(`${errno}: failed, open '${PATH}'`), { code: errno, path: PATH });
      const err = toS3Error(fromFsError(fsError, "writing object velero/backups/b1", PATH));
      expect([errno, err.message.includes(PATH), err.message.includes("/srv")]).toEqual([errno, false, false]);
      expect(err.status).toBeGreaterThanOrEqual(400);
    }
  });

  it("maps a read-only filesystem to AccessDenied with the store's reason", () => {
    const err = toS3Error(fromFsError(Object.assign(new Error("EROFS"), { code: "EROFS" }), "writing object a/b", PATH));
    expect(err.code).toBe("AccessDenied");
    expect(err.message).toBe("read-only filesystem while writing object a/b");
  });

  const chunked: Array<[ChunkedErrorCode, S3ErrorCode, number]> = [
    ["SignatureDoesNotMatch", "SignatureDoesNotMatch", 403],
    ["IncompleteBody", "IncompleteBody", 400],
    ["InvalidChunk", "InvalidRequest", 400],
    ["InvalidTrailer", "InvalidRequest", 400],
  ];

  it.each(chunked)("maps ChunkedEncodingError %s to %s (%i), keeping its message", (chunkedCode, code, status) => {
    const err = toS3Error(new ChunkedEncodingError(chunkedCode, `chunk problem ${chunkedCode}`));
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toBe(`chunk problem ${chunkedCode}`);
  });

  it.each(["ECONNRESET", "ERR_STREAM_PREMATURE_CLOSE", "ECONNABORTED"])("maps a client abort (%s) to IncompleteBody", (code) => {
    const abort = Object.assign(new Error("aborted"), { code });
    const err = toS3Error(abort);
    expect(err.code).toBe("IncompleteBody");
    expect(err.status).toBe(400);
    expect(err.message).toBe("the request body ended early (the client closed the connection)");
    expect(err.cause).toBe(abort);
  });

  it("maps anything else to InternalError with a generic message that reveals nothing", () => {
    const values: unknown[] = [
      new TypeError(`Cannot read properties of undefined (reading 'x') at ${PATH}`),
      Object.assign(new Error(`EACCES: permission denied, open '${PATH}'`), { code: "EACCES", path: PATH }),
      Object.assign(new Error("timeout"), { code: "ETIMEDOUT" }),
      `a string mentioning ${PATH}`,
      undefined,
      null,
      42,
      { code: "ECONNRESET_NOT" },
    ];
    for (const value of values) {
      const err = toS3Error(value);
      expect(err.code).toBe("InternalError");
      expect(err.status).toBe(500);
      expect(err.message).toBe("the storage service failed unexpectedly; see its log");
      expect(err.cause).toBe(value);
    }
  });

  it("treats a plain object with a client-abort code as an abort (streams reject with such objects)", () => {
    expect(toS3Error({ code: "ECONNRESET" }).code).toBe("IncompleteBody");
  });
});
