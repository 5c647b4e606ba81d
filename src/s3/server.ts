import { randomBytes } from "node:crypto";
import type http from "node:http";
import type { Logger } from "../server/logger.js";
import type { StorageMetrics } from "../storage/metrics.js";
import type { S3Backend } from "./backend.js";
import type { Credentials } from "./credentials.js";
import { errorElements } from "./errorDocument.js";
import { S3Error, toS3Error } from "./errors.js";
import type { KeepAliveTiming } from "./handlers/keepAlive.js";
import { OPERATIONS, type RequestContext } from "./operations.js";
import { NotImplementedError, route, type Operation, type Route } from "./routing.js";
import { authenticate, type AuthContext } from "./sigv4.js";
import { xmlDocument } from "./xml.js";

export interface S3ServerOptions {
  /** Buckets, objects and multipart uploads: the only way handlers reach storage. */
  backend: S3Backend;
  credentials: () => Credentials;
  log: Logger;
  metrics: StorageMetrics;
  /** Virtual-host style applies to Hosts `<bucket>.<domain>`. */
  domains: readonly string[];
  /** What GetBucketLocation answers; empty means us-east-1. Requests signed for any region are accepted. */
  region: string;
  allowBucketChanges: boolean;
  /**
   * Uploads (bodies written to disk) served at once; more get 503 SlowDown, which every S3 client
   * retries with backoff. Each holds a few MiB of staging buffers, so this bounds memory.
   */
  maxUploads?: number;
  /** host[:port] of --public-url: signatures made for it verify even when a proxy rewrote Host. */
  publicHosts?: readonly string[];
  /** When a long CompleteMultipartUpload sends its 200 early, then whitespace (default: after 2 s, every 5 s). */
  completeKeepAlive?: KeepAliveTiming;
  now?: () => Date;
}

/** Operations that write a body to disk: the ones --max-uploads counts. */
const UPLOADS: ReadonlySet<Operation> = new Set(["PutObject", "UploadPart", "UploadPartCopy", "CopyObject", "CompleteMultipartUpload"]);
export const DEFAULT_MAX_UPLOADS = 64;

/** A request target longer than this is refused (S3 keys are at most 1024 bytes, even percent-encoded that fits). */
const MAX_TARGET_BYTES = 16 * 1024;
/**
 * Node counts the request line in its header limit; the S3 listener allows more than the target cap
 * so an over-long target gets a precise InvalidURI instead of a bare 431.
 */
export const S3_MAX_HEADER_BYTES = 64 * 1024;

/**
 * The S3 endpoint: a plain Node handler (no framework: the per-request cost shows in small-object
 * rates, and streaming bodies need exact control). Every request is routed, authenticated with
 * SigV4, and answered by one operation; every failure becomes an S3 XML error (HEAD: status only).
 */
export function s3Handler(options: S3ServerOptions): http.RequestListener {
  const { log, metrics } = options;
  const now = options.now ?? (() => new Date());
  const maxUploads = options.maxUploads ?? DEFAULT_MAX_UPLOADS;
  let uploading = 0;

  return (req, res) => {
    const started = performance.now();
    const requestId = nextRequestId();
    let operation: string = "unknown";
    res.setHeader("x-amz-request-id", requestId);
    res.setHeader("server", "app-snapshots");
    res.once("close", () => {
      metrics.requests.inc({ server: "s3", operation, code: String(res.statusCode) });
      metrics.duration.observe({ server: "s3", operation }, (performance.now() - started) / 1000);
    });

    const header = (name: string): string | undefined => headerValue(req, name);
    let routed: Route | undefined;
    const serve = async () => {
      const target = req.url ?? "";
      if (target.length > MAX_TARGET_BYTES) throw new S3Error("InvalidURI", `the request target is longer than ${MAX_TARGET_BYTES} bytes`);
      routed = route(req.method ?? "", target, req.headers.host, options.domains, { copySource: header("x-amz-copy-source") });
      operation = routed.operation;
      const auth: AuthContext = await authenticate({ method: req.method ?? "", rawPath: routed.rawPath, query: routed.query, header }, options.credentials(), now(), {
        alternateHosts: options.publicHosts,
      });
      const context: RequestContext = { req, res, route: routed, auth, header, options, requestId, now: now() };
      if (!UPLOADS.has(routed.operation)) return OPERATIONS[routed.operation](context);
      if (uploading >= maxUploads) {
        throw new S3Error("SlowDown", `Please reduce your request rate: ${maxUploads} uploads are in progress`);
      }
      uploading++;
      try {
        await OPERATIONS[routed.operation](context);
      } finally {
        uploading--;
      }
    };
    serve().catch((err: unknown) => {
      const error = toS3Error(err);
      // A refused feature is counted under the operation the client asked for (GetBucketAcl, …), not "unknown".
      if (err instanceof NotImplementedError && operation === "unknown") operation = err.operation;
      const fields = { requestId, method: req.method, path: (req.url ?? "").split("?")[0], operation, code: error.code, status: error.status };
      // 501 is the client asking for a feature we refuse: worth a warning, not a stack trace.
      if (error.code === "NotImplemented") log.warn({ ...fields, reason: error.message }, "S3 request for an unimplemented feature");
      else if (error.status >= 500) log.error({ ...fields, err }, "S3 request failed");
      else log.info({ ...fields, reason: error.message }, "S3 request refused");
      sendError(req, res, error, routed, requestId);
    });
  };
}

/** Request ids: a random per-process prefix and a counter (unique, and no random bytes per request). */
const REQUEST_ID_PREFIX = randomBytes(4).toString("hex").toUpperCase();
let requestCounter = 0;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) % 0x100000000;
  return `${REQUEST_ID_PREFIX}${requestCounter.toString(16).toUpperCase().padStart(8, "0")}`;
}

/** A header's value as received: duplicates joined with "," (as SigV4 canonicalises them). */
export function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  let value: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) value = value === undefined ? raw[i + 1]! : `${value},${raw[i + 1]!}`;
  }
  return value;
}

function sendError(req: http.IncomingMessage, res: http.ServerResponse, error: S3Error, routed: Route | undefined, requestId: string): void {
  if (res.headersSent) {
    // The status line is out (a download broke mid-way): all we can do is cut the connection.
    res.destroy();
    return;
  }
  // A body the client is still sending is not read; end the connection so it is not parsed as a request.
  if (!req.complete) res.setHeader("connection", "close");
  res.statusCode = error.status;
  if (error.code === "InvalidRange" && error.extra.ActualObjectSize) res.setHeader("content-range", `bytes */${error.extra.ActualObjectSize}`);
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  const resource = routed ? `/${routed.bucket}${routed.key ? `/${routed.key}` : ""}` : ((req.url ?? "").split("?")[0] ?? "");
  const body = xmlDocument("Error", errorElements(error, { bucket: routed?.bucket, key: routed?.key, resource }, requestId), null);
  res.setHeader("content-type", "application/xml");
  res.setHeader("content-length", Buffer.byteLength(body));
  res.end(body);
}
