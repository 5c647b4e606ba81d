import { Writable } from "node:stream";
import type { LevelWithSilent } from "pino";
import { createLogger, type Logger } from "../../src/server/logger.js";

/** A logger that keeps every JSON line at `level` or above, for tests that check what a server logged. */
export function collectingLogger(level: LevelWithSilent): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger({
    level,
    pretty: false,
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  });
  return { log, lines };
}

/** Error lines only: a server that logs an error on client input failed (the fuzzers' oracle). */
export function errorCollectingLogger(): { log: Logger; errors: string[] } {
  const { log, lines } = collectingLogger("error");
  return { log, errors: lines };
}
