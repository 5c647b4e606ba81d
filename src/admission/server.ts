import express from "express";
import type { Request, Response } from "express";
import type { Logger } from "../server/logger.js";
import { jsonBody, jsonErrors, sendJson } from "../server/json.js";
import { parseGoDuration } from "../velero/duration.js";
import { admit, encodeResponse, type Webhook } from "./admit.js";
import type { AdmissionMetrics, Outcome } from "./metrics.js";
import { parseAdmissionReview, type AdmissionReview } from "./review.js";
import type { ClusterState } from "./state.js";

export interface AdmissionAppOptions {
  state: () => ClusterState;
  log: Logger;
  metrics: AdmissionMetrics;
  /**
   * Adds what the informers do not hold to the state for one Velero request (Secrets' keys, the
   * Velero version, the node count), read on demand by the shell. Absent: the state is used as is.
   */
  prepareVelero?: (review: AdmissionReview, state: ClusterState) => Promise<ClusterState>;
}

interface Route {
  path: string;
  webhook: Webhook;
  /** The pod webhook fails open (failurePolicy Ignore); the Velero one fails closed with a message. */
  onError: (review: AdmissionReview, err: Error) => ReturnType<typeof encodeResponse>;
}

const ROUTES: Route[] = [
  {
    path: "/mutate/pods",
    webhook: "pods",
    onError: (review) => encodeResponse(review, { allowed: true, warnings: ["internal error; pod admitted unchanged (see the webhook's log)"] }),
  },
  {
    path: "/validate/velero",
    webhook: "velero",
    onError: (review, err) =>
      encodeResponse(review, { allowed: false, warnings: [], denial: { code: 500, reason: "InternalError", message: `app-snapshots webhook failed, nothing was checked: ${err.message}` } }),
  },
];

/** The apiserver's default webhook timeout, used when a request carries no ?timeout=. */
const DEFAULT_TIMEOUT_MS = 10_000;

/** Answer this long before the apiserver gives up: 10 % of its timeout, at least 100 ms. */
export function answerDeadlineMs(timeoutParam: unknown): number {
  const ns = typeof timeoutParam === "string" ? parseGoDuration(timeoutParam) : undefined;
  const timeoutMs = ns !== undefined && ns > 0 ? Math.min(ns / 1e6, 30_000) : DEFAULT_TIMEOUT_MS;
  return Math.max(timeoutMs - Math.max(100, timeoutMs * 0.1), 0);
}

/**
 * POST /mutate/pods and POST /validate/velero. The pod route fails open: whatever goes wrong
 * inside, the pod is admitted unchanged with a warning. The Velero route fails closed with a
 * message saying the webhook failed. Errors are logged and counted; only a body that is not an
 * AdmissionReview gets a 400.
 */
export function admissionApp(options: AdmissionAppOptions): express.Express {
  const { log, metrics } = options;
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("query parser", "simple");

  for (const route of ROUTES) {
    const webhook = route.webhook;
    const finish = (res: Response, started: bigint, outcome: Outcome, operation: string, body: unknown, status = 200) => {
      if (res.headersSent) return;
      sendJson(res, status, body);
      metrics.requests.inc({ webhook, operation, outcome });
      metrics.duration.observe({ webhook }, Number(process.hrtime.bigint() - started) / 1e9);
    };

    app.post(
      route.path,
      (req: Request, res: Response, next) => {
        // Answer before the apiserver's deadline even if the body (or a lookup) is slow.
        const started = process.hrtime.bigint();
        res.locals.started = started;
        const timer = setTimeout(() => {
          const review = res.locals.review as AdmissionReview | undefined;
          if (review) finish(res, started, "timeout", review.request.operation, route.onError(review, new Error("no decision before the apiserver's timeout")));
          else finish(res, started, "timeout", "UNKNOWN", { message: "request body did not arrive before the deadline" }, 408);
        }, answerDeadlineMs(req.query.timeout));
        res.once("close", () => clearTimeout(timer));
        next();
      },
      ...jsonBody(),
      async (req: Request, res: Response) => {
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
          let state = options.state();
          if (webhook === "velero" && options.prepareVelero) state = await options.prepareVelero(review, state);
          const out = admit(review, state, webhook);
          const outcome: Outcome = out.response.patch ? "patched" : out.response.allowed ? "allowed" : "denied";
          if (out.response.patch) metrics.patches.inc({ webhook });
          if (out.response.warnings) metrics.warnings.inc({ webhook }, out.response.warnings.length);
          log.debug({ uid: review.request.uid, kind: review.request.kind.kind, namespace: review.request.namespace, name: review.request.name, outcome }, "admitted");
          finish(res, started, outcome, operation, out);
        } catch (err) {
          log.error({ err, uid: review.request.uid, kind: review.request.kind.kind, namespace: review.request.namespace }, "admission failed");
          finish(res, started, "error", operation, route.onError(review, err as Error));
        }
      },
    );
  }
  app.use((_req, res) => {
    sendJson(res, 404, { message: `not found: ${ROUTES.map((r) => `POST ${r.path}`).join(" or ")}` });
  });
  app.use(jsonErrors);
  return app;
}
