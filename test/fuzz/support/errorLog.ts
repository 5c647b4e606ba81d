import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../../src/server/logger.js";

/** A logger that keeps every line at level error or above: a server that logs an error on client input failed. */
export function errorCollectingLogger(): { log: Logger; errors: string[] } {
  const errors: string[] = [];
  const log = createLogger({
    level: "error",
    pretty: false,
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        errors.push(chunk.toString());
        done();
      },
    }),
  });
  return { log, errors };
}
