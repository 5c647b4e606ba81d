import express from "express";
import type { ErrorRequestHandler, RequestHandler } from "express";
import type { ServerResponse } from "node:http";
import { MAX_REQUEST_BODY_BYTES } from "./http.js";

/**
 * Writes a JSON response directly. Express's res.json() costs more than the whole admission
 * decision (content-type negotiation, ETag hashing, freshness checks); webhooks need none of it.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.setHeader("content-length", Buffer.byteLength(text));
  res.end(text);
}

/** JSON bodies up to the admission limit; anything that is not declared JSON is refused with 415. */
export function jsonBody(limitBytes = MAX_REQUEST_BODY_BYTES): RequestHandler[] {
  const requireJson: RequestHandler = (req, res, next) => {
    // A plain header check: type-is parsing costs measurable time per admission request.
    const type = req.headers["content-type"]?.split(";", 1)[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      sendJson(res, 415, { message: `expected Content-Type application/json, got ${req.get("content-type") ?? "none"}` });
      return;
    }
    next();
  };
  return [requireJson, express.json({ limit: limitBytes, strict: true })];
}

interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
  message?: string;
}

/** Turns body-parser failures into precise JSON 4xx answers; anything else is a 500 without internals. */
export const jsonErrors: ErrorRequestHandler = (err: BodyParserError, _req, res, next) => {
  if (res.headersSent) {
    next(err);
    return;
  }
  switch (err.type) {
    case "entity.too.large":
      sendJson(res, 413, { message: `request body exceeds ${err.limit ?? MAX_REQUEST_BODY_BYTES} bytes` });
      return;
    case "entity.parse.failed":
      sendJson(res, 400, { message: `request body is not valid JSON: ${err.message ?? "parse error"}` });
      return;
    case "encoding.unsupported":
    case "charset.unsupported":
      sendJson(res, 415, { message: err.message ?? "unsupported encoding" });
      return;
    case "request.aborted":
      sendJson(res, 400, { message: "request aborted by the client" });
      return;
    default:
      if (err.status && err.status >= 400 && err.status < 500) {
        sendJson(res, err.status, { message: err.message ?? "bad request" });
        return;
      }
      sendJson(res, 500, { message: "internal error" });
  }
};
