// Helpers of the storage benchmark (test/bench/storage.ts) and its PUT child (storagePut.ts).
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";

/**
 * A request body generated in memory: `total` bytes cut from a repeating block in `chunkBytes`
 * pieces, like the 64 KiB reads an HTTP server hands to the store.
 */
export function repeatedBody(block: Buffer, total: number, chunkBytes = 64 * 1024): Readable {
  return Readable.from(chunks(block, total, chunkBytes));
}

function* chunks(block: Buffer, total: number, chunkBytes: number): Generator<Buffer> {
  let sent = 0;
  let offset = 0;
  while (sent < total) {
    const n = Math.min(chunkBytes, block.length - offset, total - sent);
    yield block.subarray(offset, offset + n);
    sent += n;
    offset = (offset + n) % block.length;
  }
}

/** /proc/<pid>/<file>, or undefined once the process has exited; `pid` may be `self/task/<tid>` for one thread. */
function proc(pid: number | string, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return undefined;
  }
}

/** A memory figure of a live process, in KiB; NaN once it has exited. */
export function statusKiB(pid: number | "self", field: "VmRSS" | "VmHWM"): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(proc(pid, "status") ?? "")?.[1] ?? NaN);
}

/** CPU time (user + system) a live process (or thread) has used so far, in seconds; NaN once it has exited. */
export function cpuSeconds(pid: number | string): number {
  const stat = proc(pid, "stat");
  if (!stat) return NaN;
  // After the parenthesised command name: utime and stime are fields 14 and 15 (clock ticks, 100 per second on Linux).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
