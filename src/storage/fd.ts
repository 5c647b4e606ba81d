import fs from "node:fs";

/**
 * Promise wrappers over the callback fs API for raw file descriptors, for the large reads of the
 * object GET path: FileHandle costs about three times their main-thread time. (A small object's
 * open, fstat, read and close are synchronous calls: see ObjectStore.open.)
 */

export function readFd(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}
