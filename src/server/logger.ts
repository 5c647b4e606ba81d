import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Pretty output for humans; defaults to "stderr is a terminal". JSON otherwise (what log shippers want). */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
}

/**
 * One logger for every role. Secrets never reach it: request bodies are not logged, and the
 * redact list covers the header and field names that can carry credentials.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  const pretty = options.pretty ?? Boolean(process.stderr.isTTY);
  const base = {
    level,
    base: { app: "app-snapshots" },
    redact: {
      paths: ["req.headers.authorization", "req.headers.cookie", "*.secretKey", "*.password", "*.token"],
      censor: "[redacted]",
    },
  };
  if (pretty && !options.destination) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { destination: 2, colorize: true } } });
  }
  return pino(base, (options.destination as pino.DestinationStream | undefined) ?? pino.destination(2));
}
