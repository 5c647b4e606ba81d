import fs, { type BigIntStats } from "node:fs";

/**
 * The file calls of a small GET and of the path checks every request makes, run one of two ways. On a local disk each
 * takes microseconds, while a round trip through libuv's thread pool costs tens of them on the event
 * loop (most of what a 4 KiB GET costs): SYNC_CALLS. On a network filesystem (a root shared by
 * replicas, --shared) one call can wait for the server, which must not stall the event loop: POOL_CALLS.
 * Both use raw descriptors: FileHandle costs about three times the pool's main-thread time.
 */
export interface FileCalls {
  realpath(path: string): Promise<string>;
  lstat(path: string): Promise<BigIntStats>;
  open(path: string, flags: number): Promise<number>;
  fstat(fd: number): Promise<BigIntStats>;
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  close(fd: number): Promise<void>;
}

function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

export const SYNC_CALLS: FileCalls = {
  realpath: (path) => settled(() => fs.realpathSync.native(path)),
  lstat: (path) => settled(() => fs.lstatSync(path, { bigint: true })),
  open: (path, flags) => settled(() => fs.openSync(path, flags)),
  fstat: (fd) => settled(() => fs.fstatSync(fd, { bigint: true })),
  read: (fd, buffer, offset, length, position) => settled(() => fs.readSync(fd, buffer, offset, length, position)),
  close: (fd) => settled(() => fs.closeSync(fd)),
};

export const POOL_CALLS: FileCalls = {
  realpath: (path) => new Promise((resolve, reject) => fs.realpath.native(path, (err, resolved) => (err ? reject(err) : resolve(resolved)))),
  lstat: (path) => new Promise((resolve, reject) => fs.lstat(path, { bigint: true }, (err, stats) => (err ? reject(err) : resolve(stats)))),
  open: (path, flags) => new Promise((resolve, reject) => fs.open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd)))),
  fstat: (fd) => new Promise((resolve, reject) => fs.fstat(fd, { bigint: true }, (err, stats) => (err ? reject(err) : resolve(stats)))),
  read: readFd,
  close: closeFd,
};

/** Large reads (a download's 1 MiB buffers) always go through the pool. */
export function readFd(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/** Creates `path` (it must not exist) holding `data`, fdatasynced when `durable`; the file is closed whatever happens. */
export function writeDurably(path: string, data: Buffer, durable: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.open(path, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600, (openErr, fd) => {
      if (openErr) return reject(openErr);
      const finish = (err: NodeJS.ErrnoException | null) =>
        fs.close(fd, (closeErr) => {
          const failure = err ?? closeErr;
          if (failure) reject(failure);
          else resolve();
        });
      const write = (done: number) => {
        if (done === data.length) return durable ? fs.fdatasync(fd, finish) : finish(null);
        fs.write(fd, data, done, data.length - done, done, (err, written) => {
          if (err) return finish(err);
          if (written === 0) return finish(Object.assign(new Error("the file accepted no bytes"), { code: "EIO" }));
          write(done + written);
        });
      };
      write(0);
    });
  });
}
