import express from "express";
import type { ErrorRequestHandler, RequestHandler } from "express";
import { MAX_REQUEST_BODY_BYTES } from "./http.js";

/** JSON bodies up to the admission limit; anything that is not declared JSON is refused with 415. */
export function jsonBody(limitBytes = MAX_REQUEST_BODY_BYTES): RequestHandler[] {
  const requireJson: RequestHandler = (req, res, next) => {
    if (!req.is("application/json")) {
      res.status(415).json({ message: `expected Content-Type application/json, got ${req.get("content-type") ?? "none"}` });
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
      res.status(413).json({ message: `request body exceeds ${err.limit ?? MAX_REQUEST_BODY_BYTES} bytes` });
      return;
    case "entity.parse.failed":
      res.status(400).json({ message: `request body is not valid JSON: ${err.message ?? "parse error"}` });
      return;
    case "encoding.unsupported":
    case "charset.unsupported":
      res.status(415).json({ message: err.message ?? "unsupported encoding" });
      return;
    case "request.aborted":
      res.status(400).json({ message: "request aborted by the client" });
      return;
    default:
      if (err.status && err.status >= 400 && err.status < 500) {
        res.status(err.status).json({ message: err.message ?? "bad request" });
        return;
      }
      res.status(500).json({ message: "internal error" });
  }
};
