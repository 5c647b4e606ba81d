import { createHash } from "node:crypto";
import { join } from "node:path";
import { errnoOf } from "./errors.js";
import type { FileCalls } from "./fd.js";
import { FOLDER_MARKER } from "./keys.js";

/**
 * The one hidden folder under the root for everything that is not an object: temp files and
 * metadata now, multipart parts later. It is on the same filesystem as the buckets (so renames are
 * atomic), and no bucket name can start with '.', so no bucket or key can reach it.
 */
export const INTERNAL_DIR = ".app-snapshots";

/** Where everything lives, given the store root (a real path: no symlinks in it). */
export class Layout {
  readonly internal: string;
  readonly tmp: string;
  readonly meta: string;

  constructor(readonly root: string) {
    this.internal = join(root, INTERNAL_DIR);
    this.tmp = join(this.internal, "tmp");
    this.meta = join(this.internal, "meta");
  }

  bucketDir(bucket: string): string {
    return join(this.root, bucket);
  }

  /**
   * `<root>/<bucket>/a/b/c` for key `a/b/c`: the LVP layout, readable with `ls`; a folder marker `a/b/`
   * is `<root>/<bucket>/a/b/.app-snapshots-folder` (see FOLDER_MARKER). Keys are validated first.
   */
  objectPath(bucket: string, key: string): string {
    return join(this.root, ...this.objectSegments(bucket, key));
  }

  /** objectPath() below the root, one segment each: the bucket, the key's folders, the file's name. */
  objectSegments(bucket: string, key: string): string[] {
    if (key.endsWith("/")) return [bucket, ...key.slice(0, -1).split("/"), FOLDER_MARKER];
    return [bucket, ...key.split("/")];
  }

  /**
   * Metadata of one version of an object, named by the key's hash (fixed length, any key) and the
   * inode of the data file it describes. Several versions can exist for a moment (while an object
   * is replaced); a reader picks the one whose inode matches the file it opened.
   */
  metaFile(bucket: string, key: string, ino: string): string {
    const { dirs, name } = this.metaSegments(bucket, key, ino);
    return join(this.meta, ...dirs, name);
  }

  /** metaFile() below the meta folder: its two folders (bucket, shard) and the record's name. */
  metaSegments(bucket: string, key: string, ino: string): { dirs: [string, string]; name: string } {
    const digest = keyDigest(key);
    return { dirs: [bucket, digest.slice(0, 2)], name: `${digest}.${ino}.json` };
  }
}

export function keyDigest(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export type Confinement = "inside" | "missing" | "escapes" | "not-a-directory";

/**
 * Whether directory `lexical` exists with no symlink anywhere on the way. A symlink planted in the
 * store (or a bucket that is one) could lead outside the root, so the resolved path must equal the
 * lexical one; nothing behind a link is ever opened.
 */
export async function confine(lexical: string, calls: FileCalls): Promise<Confinement> {
  try {
    return (await calls.realpath(lexical)) === lexical ? "inside" : "escapes";
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT") return "missing";
    if (code === "ENOTDIR") return "not-a-directory";
    if (code === "ELOOP") return "escapes";
    throw err;
  }
}
