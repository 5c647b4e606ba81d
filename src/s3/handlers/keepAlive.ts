import type http from "node:http";
import type { S3Error } from "../errors.js";

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

export interface KeepAliveTiming {
  /** How long a request may run before the status and headers are sent early (0: as soon as start() is called). */
  firstAfterMs: number;
  /** Then one space every this often. */
  everyMs: number;
}

/** S3 sends the first whitespace within seconds and more every few seconds; proxies commonly cut idle responses at 60 s. */
export const DEFAULT_KEEP_ALIVE: KeepAliveTiming = { firstAfterMs: 2_000, everyMs: 5_000 };

/**
 * An XML answer that may take minutes (CompleteMultipartUpload assembling GiBs). S3 sends
 * `200 OK` and the headers early and then whitespace until the document is ready, so no proxy or
 * client times out; an error after that point goes in the body as an `<Error>` document ("a 200
 * response to CompleteMultipartUpload can contain an error", S3 API reference), which the AWS SDKs
 * detect and retry. Until start()'s delay has passed nothing is sent, and the answer is an ordinary one.
 */
export class KeepAliveAnswer {
  private timer: NodeJS.Timeout | undefined;
  private early = false;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly timing: KeepAliveTiming,
  ) {}

  /** Whether the status line is out: from now on, errors must go in the body. */
  get started(): boolean {
    return this.early;
  }

  start(): void {
    if (this.timer || this.early) return;
    if (this.timing.firstAfterMs <= 0) this.sendHead();
    else this.timer = setTimeout(() => this.sendHead(), this.timing.firstAfterMs);
  }

  /** The document (with its declaration), either as a normal response or as the rest of the early one. */
  finish(document: string): void {
    this.stop();
    if (!this.early) {
      this.res.statusCode = 200;
      this.res.setHeader("content-type", "application/xml");
      this.res.setHeader("content-length", Buffer.byteLength(document));
      this.res.end(document);
      return;
    }
    this.res.end(document.startsWith(DECLARATION) ? document.slice(DECLARATION.length) : document);
  }

  /** After the early 200: the error as the body. Before it: nothing to do here (the caller throws). */
  fail(error: S3Error, errorDocument: (error: S3Error) => string): void {
    this.stop();
    const document = errorDocument(error);
    this.res.end(document.startsWith(DECLARATION) ? document.slice(DECLARATION.length) : document);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private sendHead(): void {
    this.timer = undefined;
    if (this.res.headersSent || this.res.destroyed) return;
    this.early = true;
    this.res.statusCode = 200;
    this.res.setHeader("content-type", "application/xml");
    // Chunked: the length is not known yet.
    this.res.write(DECLARATION);
    const tick = () => {
      if (this.res.writableEnded || this.res.destroyed) return;
      this.res.write(" ");
      this.timer = setTimeout(tick, this.timing.everyMs);
    };
    this.timer = setTimeout(tick, this.timing.everyMs);
  }
}
