import fs from "node:fs";
import { errnoOf } from "./errors.js";

/**
 * fsync of directories, coalesced: concurrent writers that renamed into the same directory share one
 * fsync instead of each opening and syncing it. A caller may only share an fsync that starts after
 * its own change, so a request that arrives while one is running waits for the next, which every
 * request arriving meanwhile joins; never more than one running and one waiting per directory.
 */
export class DirSync {
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, Promise<void>>();

  /** Resolves once an fsync of `dir` that started after this call has finished. A missing directory needs none. */
  sync(dir: string): Promise<void> {
    const queued = this.waiting.get(dir);
    if (queued) return queued;
    const current = this.running.get(dir);
    if (!current) return this.start(dir);
    const next = current
      .catch(() => undefined)
      .then(() => {
        this.waiting.delete(dir);
        return this.start(dir);
      });
    this.waiting.set(dir, next);
    return next;
  }

  private start(dir: string): Promise<void> {
    const run = fsyncDirectory(dir).finally(() => {
      if (this.running.get(dir) === run) this.running.delete(dir);
    });
    this.running.set(dir, run);
    return run;
  }
}

function fsyncDirectory(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, (openErr, fd) => {
      if (openErr) return errnoOf(openErr) === "ENOENT" ? resolve() : reject(openErr);
      fs.fsync(fd, (syncErr) =>
        fs.close(fd, (closeErr) => {
          const err = syncErr ?? closeErr;
          if (err) reject(err);
          else resolve();
        }),
      );
    });
  });
}
