import express from "express";
import type { Request, Response } from "express";
import type { Logger } from "../server/logger.js";
import { jsonBody, jsonErrors, sendJson } from "../server/json.js";
import { parseGoDuration } from "../velero/duration.js";
import { admit, encodeResponse } from "./admit.js";
import type { AdmissionMetrics, Outcome } from "./metrics.js";
import { parseAdmissionReview, type AdmissionReview } from "./review.js";
import type { ClusterState } from "./state.js";

export interface AdmissionAppOptions {
  state: () => ClusterState;
  log: Logger;
  metrics: AdmissionMetrics;
}

/** The apiserver's default webhook timeout, used when a request carries no ?timeout=. */
const DEFAULT_TIMEOUT_MS = 10_000;

/** Answer this long before the apiserver gives up: 10 % of its timeout, at least 100 ms. */
export function answerDeadlineMs(timeoutParam: unknown): number {
  const ns = typeof timeoutParam === "string" ? parseGoDuration(timeoutParam) : undefined;
  const timeoutMs = ns !== undefined && ns > 0 ? Math.min(ns / 1e6, 30_000) : DEFAULT_TIMEOUT_MS;
  return Math.max(timeoutMs - Math.max(100, timeoutMs * 0.1), 0);
}

/**
 * POST /mutate/pods. Fails open: whatever goes wrong inside, the pod is admitted unchanged with a
 * warning, the error is logged and counted. Only a body that is not an AdmissionReview gets a 400.
 */
export function admissionApp(options: AdmissionAppOptions): express.Express {
  const { log, metrics } = options;
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("query parser", "simple");

  const webhook = "pods";
  const finish = (res: Response, started: bigint, outcome: Outcome, operation: string, body: unknown, status = 200) => {
    if (res.headersSent) return;
    sendJson(res, status, body);
    metrics.requests.inc({ webhook, operation, outcome });
    metrics.duration.observe({ webhook }, Number(process.hrtime.bigint() - started) / 1e9);
  };

  app.post(
    "/mutate/pods",
    (req: Request, res: Response, next) => {
      // Answer before the apiserver's deadline even if the body is slow to arrive.
      const started = process.hrtime.bigint();
      res.locals.started = started;
      const timer = setTimeout(() => {
        const review = res.locals.review as AdmissionReview | undefined;
        if (review) {
          finish(res, started, "timeout", review.request.operation, encodeResponse(review, { allowed: true, warnings: ["answered before the apiserver's timeout; pod admitted unchanged"] }));
        } else {
          finish(res, started, "timeout", "UNKNOWN", { message: "request body did not arrive before the deadline" }, 408);
        }
      }, answerDeadlineMs(req.query.timeout));
      res.once("close", () => clearTimeout(timer));
      next();
    },
    ...jsonBody(),
    (req: Request, res: Response) => {
      const started = res.locals.started as bigint;
      const parsed = parseAdmissionReview(req.body);
      if ("error" in parsed) {
        finish(res, started, "invalid", "UNKNOWN", { message: parsed.error }, 400);
        return;
      }
      const review = parsed.review;
      res.locals.review = review;
      const operation = review.request.operation;
      try {
        const out = admit(review, options.state());
        const outcome: Outcome = out.response.patch ? "patched" : out.response.allowed ? "allowed" : "denied";
        if (out.response.patch) metrics.patches.inc({ webhook });
        if (out.response.warnings) metrics.warnings.inc({ webhook }, out.response.warnings.length);
        log.debug({ uid: review.request.uid, namespace: review.request.namespace, name: review.request.name, outcome }, "admitted");
        finish(res, started, outcome, operation, out);
      } catch (err) {
        log.error({ err, uid: review.request.uid, namespace: review.request.namespace }, "pod admission failed; admitting unchanged");
        finish(res, started, "error", operation, encodeResponse(review, { allowed: true, warnings: ["internal error; pod admitted unchanged (see the webhook's log)"] }));
      }
    },
  );
  app.use((_req, res) => {
    sendJson(res, 404, { message: "not found: POST /mutate/pods" });
  });
  app.use(jsonErrors);
  return app;
}
