/** What went wrong, in terms a storage endpoint can map to a status code. */
export type StorageErrorCode =
  | "InvalidBucketName"
  | "InvalidKey"
  | "InvalidArgument"
  | "KeyConflict"
  | "NoSuchBucket"
  | "NoSuchKey"
  | "BucketAlreadyExists"
  | "BucketNotEmpty"
  | "NoSpace"
  | "PermissionDenied"
  | "ReadOnly"
  | "BadDigest"
  | "PreconditionFailed"
  | "IncompleteBody"
  | "EntityTooLarge"
  | "CrossDevice"
  | "Io";

/** A failed store operation: a code, the absolute path involved (for logs), and the underlying cause. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    /** The message without the path: what a client may be told. */
    readonly reason: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(path ? `${reason}: ${path}${causeSuffix(options?.cause)}` : `${reason}${causeSuffix(options?.cause)}`, options);
    this.name = "StorageError";
  }
}

function causeSuffix(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code ? ` (${code})` : "";
}

/** The errno name (ENOENT, ENOSPC, …) of a system error; undefined for anything else, even errors with a `code`. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * Whether a request body failed because the client went away (Node's "aborted" request, a reset
 * socket, a stream closed before its end): the client's doing, never the disk's.
 */
export function clientAborted(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ECONNABORTED";
}

/**
 * Filesystem failures that are not about a missing or misplaced object: disk full, permissions,
 * read-only mounts, I/O errors. `what` says what the store was doing ("writing object x/y").
 */
export function fromFsError(err: unknown, what: string, path: string): StorageError {
  if (err instanceof StorageError) return err;
  switch (errnoOf(err)) {
    case "ENOSPC":
    case "EDQUOT":
      return new StorageError("NoSpace", `no space left while ${what}`, path, { cause: err });
    case "EACCES":
    case "EPERM":
      return new StorageError("PermissionDenied", `permission denied while ${what}`, path, { cause: err });
    case "EROFS":
      return new StorageError("ReadOnly", `read-only filesystem while ${what}`, path, { cause: err });
    case "ELOOP":
    case "ENOTDIR":
      // A folder of the store swapped for a link (O_DIRECTORY|O_NOFOLLOW fails it with either) or a file while in
      // use: the write is refused, the link never followed (openDir.ts).
      return new StorageError("KeyConflict", `a symbolic link or a file is where a folder should be while ${what}; the store does not follow links`, path, { cause: err });
    case "EXDEV":
      return new StorageError("CrossDevice", `the bucket is on another filesystem than the store root (mount the volume at the root, not per bucket) while ${what}`, path, { cause: err });
    default:
      return new StorageError("Io", `I/O error while ${what}`, path, { cause: err });
  }
}
