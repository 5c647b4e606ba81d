import type http from "node:http";
import type { Logger } from "../server/logger.js";
import { StorageError } from "./errors.js";
import { verifyLvpRequest, type LvpVerdict } from "./lvpSignature.js";
import type { StorageMetrics } from "./metrics.js";
import { sendObjectBytes } from "./objectResponse.js";
import { decideRange } from "./range.js";
import type { SigningKeySource } from "./signingKeys.js";
import type { ObjectStore, OpenObject } from "./store.js";

export interface LvpServerOptions {
  store: ObjectStore;
  keys: SigningKeySource;
  /** host:port values URLs may have been issued for besides the request's Host: LVP puts `<POD_IP>:3000` in them. */
  issuedHosts: readonly string[];
  log: Logger;
  metrics: StorageMetrics;
  now?: () => Date;
}

/** The longest request-target accepted; a signed URL for a 1 KiB key is well under it. */
const MAX_TARGET_BYTES = 8 * 1024;
const NOT_FOUND = new Set(["NoSuchKey", "NoSuchBucket", "InvalidKey", "InvalidBucketName", "KeyConflict"]);

/**
 * The LVP file-server role: GET/HEAD of `/<bucket>/<key>` authorised by LVP's signed URLs, with
 * Range support, plus an unauthenticated `/livez`. A plain Node handler rather than express: two
 * routes, and the per-request cost shows in the small-object GET rate.
 */
export function lvpHandler(options: LvpServerOptions): http.RequestListener {
  const { store, keys, log, metrics } = options;
  const now = options.now ?? (() => new Date());

  return (req, res) => {
    const started = performance.now();
    let operation = "other";
    res.once("close", () => {
      metrics.requests.inc({ server: "lvp", operation, code: String(res.statusCode) });
      metrics.duration.observe({ server: "lvp", operation }, (performance.now() - started) / 1000);
    });
    serve().catch((err: unknown) => {
      log.error({ err, method: req.method, path: pathOnly(req.url) }, "LVP request failed");
      if (!res.headersSent) reply(res, 500, "internal error\n");
      else res.destroy();
    });

    async function serve(): Promise<void> {
      const target = req.url ?? "";
      if (!target.startsWith("/") || target.length > MAX_TARGET_BYTES) return reply(res, 400, "bad request target\n");
      const queryAt = target.indexOf("?");
      const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
      if (rawPath === "/livez") {
        operation = "livez";
        return reply(res, 200, "ok\n");
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD");
        return reply(res, 405, "only GET and HEAD\n");
      }
      operation = req.method === "GET" ? "GetObject" : "HeadObject";
      let path: string;
      try {
        path = decodeURIComponent(rawPath);
      } catch {
        return reply(res, 400, "malformed percent-encoding in the path\n");
      }
      const query = [...new URLSearchParams(queryAt < 0 ? "" : target.slice(queryAt + 1))];

      const refusal = await authorise(path, query, req);
      if (refusal) {
        log.info({ method: req.method, path: rawPath, reason: refusal.reason }, "LVP request refused");
        return reply(res, refusal.status, `${refusal.reason}\n`);
      }

      const slash = path.indexOf("/", 1);
      if (slash < 0) return reply(res, 404, "not found\n");
      let object: OpenObject;
      try {
        object = await store.open(path.slice(1, slash), path.slice(slash + 1));
      } catch (err) {
        if (err instanceof StorageError && NOT_FOUND.has(err.code)) return reply(res, 404, "not found\n");
        throw err;
      }
      const { info } = object;
      res.setHeader("accept-ranges", "bytes");
      res.setHeader("last-modified", info.lastModified.toUTCString());
      res.setHeader("content-type", info.contentType);
      if (info.etag) res.setHeader("etag", `"${info.etag}"`);
      const range = decideRange(req.headers.range, info.size);
      if (range.kind === "unsatisfiable") {
        await object.close();
        res.setHeader("content-range", `bytes */${info.size}`);
        return reply(res, 416, "range not satisfiable\n");
      }
      const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, info.size - 1];
      res.statusCode = range.kind === "partial" ? 206 : 200;
      if (range.kind === "partial") res.setHeader("content-range", `bytes ${start}-${end}/${info.size}`);
      res.setHeader("content-length", end - start + 1);
      await sendObjectBytes(req, res, object, { start, end }, { metrics, server: "lvp", log });
    }
  };

  /** Why the request may not proceed (403, or 503 when no key can be read), or undefined. */
  async function authorise(path: string, query: Array<[string, string]>, req: http.IncomingMessage): Promise<{ status: number; reason: string } | undefined> {
    const hosts = new Set([...(req.headers.host ? [req.headers.host] : []), ...options.issuedHosts]);
    const origins = [...hosts].flatMap((host) => [
      { scheme: "http", host },
      { scheme: "https", host },
    ]);
    let available: Buffer[];
    try {
      available = await keys.keys();
    } catch (err) {
      log.warn({ err, source: keys.description }, "could not read the signing key");
      return { status: 503, reason: "the signing key cannot be read" };
    }
    let verdict: LvpVerdict = verifyLvpRequest({ path, query, origins }, available, now());
    if (!verdict.ok && /does not match|no signing key/.test(verdict.reason)) {
      // The key may have been created or rotated since it was cached.
      const fresh = await keys.refresh().catch(() => available);
      if (fresh !== available) verdict = verifyLvpRequest({ path, query, origins }, fresh, now());
    }
    return verdict.ok ? undefined : { status: 403, reason: verdict.reason };
  }
}

function reply(res: http.ServerResponse, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.setHeader("content-length", Buffer.byteLength(text));
  res.end(text);
}

/** Never log the query: it carries the signature. */
function pathOnly(url: string | undefined): string {
  return (url ?? "").split("?")[0] ?? "";
}
