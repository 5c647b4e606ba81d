import { closeSync, constants, mkdirSync, openSync } from "node:fs";
import { readdir, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { errnoOf } from "./errors.js";

/**
 * Folders of the store opened one component at a time, so that a name is never resolved through a
 * folder someone swapped for a symbolic link after we checked it.
 *
 * Node.js has no openat(), renameat() or unlinkat(), but on Linux `/proc/self/fd/<fd>/<name>` is
 * resolved from the directory that `fd` has open, not from the names that led there. Each folder is
 * opened with O_DIRECTORY|O_NOFOLLOW relative to its already open parent, so a link anywhere on the way
 * fails the open (ELOOP) instead of being followed, and every create, rename, link and unlink is then
 * made through `entry()` of the open folder: a folder replaced by a link after it was opened is not
 * looked at again. What is written lands in a folder that was inside the root when it was opened.
 */
export class OpenDir {
  private closed = false;

  private constructor(
    readonly fd: number,
    /** The folder's path as the store names it (for messages and directory fsyncs, never to reach it). */
    readonly path: string,
  ) {}

  /** Opens a trusted folder by path (the store root, resolved at start-up; or one the caller just checked). */
  static open(path: string): OpenDir {
    return new OpenDir(openSync(path, DIR_FLAGS), path);
  }

  /** `name` in this folder, resolved through the open descriptor; `name` must be one path segment. */
  entry(name: string): string {
    return `/proc/self/fd/${this.fd}/${name}`;
  }

  /** The sub-folder `name`, opened without following a link (ELOOP), a file (ENOTDIR) or nothing (ENOENT). */
  child(name: string): OpenDir {
    return new OpenDir(openSync(this.entry(name), DIR_FLAGS), join(this.path, name));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The folders from a base down to a target; every folder in it is open until close(). */
export class DirChain {
  constructor(
    /** base's children, outermost first: dirs[i] is segment i; the base itself is not owned. */
    readonly dirs: OpenDir[],
    /** The first folder this walk created (its path), if any: it and its parents need a directory fsync. */
    readonly created: string | undefined,
  ) {}

  /** The deepest folder (the target). */
  get last(): OpenDir {
    return this.dirs[this.dirs.length - 1]!;
  }

  close(): void {
    for (const dir of this.dirs) dir.close();
  }
}

/**
 * Opens `segments` below `base` one at a time (see OpenDir). With `createMode`, missing folders are
 * created (mkdir relative to the open parent, then opened like the rest, so a link planted between
 * the mkdir and the open fails it too). Fails with the fs error of the first folder that cannot be
 * opened: ENOENT, ELOOP (a link), ENOTDIR (a file), EEXIST (created and replaced meanwhile).
 */
export function openChain(base: OpenDir, segments: readonly string[], createMode?: number): DirChain {
  const dirs: OpenDir[] = [];
  let created: string | undefined;
  try {
    let parent = base;
    for (const segment of segments) {
      let dir: OpenDir;
      try {
        dir = parent.child(segment);
      } catch (err) {
        if (createMode === undefined || errnoOf(err) !== "ENOENT") throw err;
        try {
          mkdirSync(parent.entry(segment), { mode: createMode });
          created ??= join(parent.path, segment);
        } catch (mkdirErr) {
          if (errnoOf(mkdirErr) !== "EEXIST") throw mkdirErr; // a concurrent writer created it: open it like any other
        }
        dir = parent.child(segment);
      }
      dirs.push(dir);
      parent = dir;
    }
    return new DirChain(dirs, created);
  } catch (err) {
    for (const dir of dirs) dir.close();
    throw err;
  }
}

/** Runs `work` on the folder `segments` below `base`, closing the folders afterwards. */
export async function inChain<T>(base: OpenDir, segments: readonly string[], createMode: number | undefined, work: (chain: DirChain) => Promise<T>): Promise<T> {
  const chain = openChain(base, segments, createMode);
  try {
    return await work(chain);
  } finally {
    chain.close();
  }
}

/**
 * Removes `name` in `parent` and, if it is a folder, everything in it, without ever following a
 * link: each entry is unlinked through its open parent, and a folder is opened (O_NOFOLLOW) before
 * its entries are listed, so a folder swapped for a link meanwhile only loses the link. (rm -r by
 * path lists a folder by name after checking it, and follows a link swapped in between.)
 */
export async function removeTree(parent: OpenDir, name: string, attempt = 1): Promise<void> {
  try {
    await unlink(parent.entry(name));
    return;
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT") return;
    if (code !== "EISDIR" && code !== "EPERM") throw err;
  }
  let dir: OpenDir;
  try {
    dir = parent.child(name);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT") return;
    // Swapped for a link or a file since the unlink failed: remove that instead (a few times, then give up).
    if ((code === "ELOOP" || code === "ENOTDIR") && attempt < 3) return removeTree(parent, name, attempt + 1);
    throw err;
  }
  try {
    for (const entry of await readdir(dir.entry("."))) await removeTree(dir, entry);
  } finally {
    dir.close();
  }
  try {
    await rmdir(parent.entry(name));
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw err;
  }
}
