import { randomUUID } from "node:crypto";
import express from "express";
import type { ErrorRequestHandler, Request, Response } from "express";
import type { Logger } from "../server/logger.js";
import { jsonBody, jsonErrors, sendJson } from "../server/json.js";
import { parseGoDuration } from "../velero/duration.js";
import { decide, encodeResponse, tooDeepVerdict, type Verdict, type Webhook } from "./admit.js";
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
  /** What pod decisions need beyond the informers (the claims a pod mounts), read per request. */
  preparePods?: (review: AdmissionReview, state: ClusterState) => Promise<ClusterState>;
  /**
   * Told the warnings of each pod response after it is sent (a pod's creator is usually a
   * controller, not a person). Must not block; whatever it throws is logged and dropped.
   */
  onPodWarnings?: (review: AdmissionReview, warnings: readonly string[]) => void;
}

/** Why no decision was made. The client is told which, with the request uid; the detail is only logged. */
type Failure = "error" | "timeout";

interface Route {
  path: string;
  webhook: Webhook;
  /** The answer when no decision was made; it never carries internal error text (RBAC messages, stacks). */
  onFailure: (review: AdmissionReview, failure: Failure) => ReturnType<typeof encodeResponse>;
}

/**
 * The admission routes. The pod webhook fails open (failurePolicy Ignore): the pod is admitted
 * unchanged with a warning. The Velero webhook fails closed: a denial saying nothing was checked.
 */
const ROUTES: Route[] = [
  {
    path: "/mutate/pods",
    webhook: "pods",
    onFailure: (review, failure) =>
      encodeResponse(review, {
        allowed: true,
        warnings: [`${failure === "timeout" ? "no decision in time" : "internal error"}; pod admitted unchanged (request ${review.request.uid}; see the webhook's log)`],
      }),
  },
  {
    path: "/validate/velero",
    webhook: "velero",
    onFailure: (review, failure) =>
      encodeResponse(review, {
        allowed: false,
        warnings: [],
        denial: {
          code: 500,
          reason: "InternalError",
          message: `app-snapshots webhook ${failure === "timeout" ? "could not decide in time" : "failed"}, nothing was checked (request ${review.request.uid}; see the webhook's log)`,
        },
      }),
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
 * message saying the webhook failed. Either names the request uid and nothing else: the error
 * itself is logged (with the uid) and counted. Only a body that is not an AdmissionReview gets a 400.
 */
export function admissionApp(options: AdmissionAppOptions): express.Express {
  const { log, metrics } = options;
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("query parser", "simple");

  for (const route of ROUTES) {
    const webhook = route.webhook;
    /** Sends the answer unless one was sent already; true when this call sent it. */
    const finish = (res: Response, started: bigint, outcome: Outcome, operation: string, body: unknown, status = 200): boolean => {
      if (res.headersSent) return false;
      sendJson(res, status, body);
      metrics.requests.inc({ webhook, operation, outcome });
      metrics.duration.observe({ webhook }, Number(process.hrtime.bigint() - started) / 1e9);
      return true;
    };

    app.post(
      route.path,
      (req: Request, res: Response, next) => {
        // Answer before the apiserver's deadline even if the body (or a lookup) is slow.
        const started = process.hrtime.bigint();
        res.locals.started = started;
        const timer = setTimeout(() => {
          const review = res.locals.review as AdmissionReview | undefined;
          if (review) {
            log.warn({ uid: review.request.uid, kind: review.request.kind.kind, namespace: review.request.namespace, name: review.request.name }, "no decision before the apiserver's timeout");
            finish(res, started, "timeout", review.request.operation, route.onFailure(review, "timeout"));
          } else finish(res, started, "timeout", "UNKNOWN", { message: "request body did not arrive before the deadline" }, 408);
        }, answerDeadlineMs(req.query.timeout));
        res.once("close", () => clearTimeout(timer));
        next();
      },
      ...jsonBody(),
      async (req: Request, res: Response) => {
        const started = res.locals.started as bigint;
        const parsed = parseAdmissionReview(req.body);
        if ("error" in parsed) {
          // The message describes the client's own input, nothing internal.
          finish(res, started, "invalid", "UNKNOWN", { message: parsed.error }, 400);
          return;
        }
        const review = parsed.review;
        res.locals.review = review;
        const operation = review.request.operation;
        let verdict: Verdict;
        // A hostile depth is answered before the lookups, the rules or the pod Events read anything of it.
        const tooDeep = tooDeepVerdict(review, webhook);
        try {
          if (tooDeep) verdict = tooDeep;
          else {
            let state = options.state();
            if (webhook === "velero" && options.prepareVelero) state = await options.prepareVelero(review, state);
            if (webhook === "pods" && options.preparePods) state = await options.preparePods(review, state);
            verdict = decide(review, state, webhook);
          }
        } catch (err) {
          log.error({ err, uid: review.request.uid, kind: review.request.kind.kind, namespace: review.request.namespace }, "admission failed");
          finish(res, started, "error", operation, route.onFailure(review, "error"));
          return;
        }
        const out = encodeResponse(review, verdict);
        const outcome: Outcome = out.response.patch ? "patched" : out.response.allowed ? "allowed" : "denied";
        log.debug({ uid: review.request.uid, kind: review.request.kind.kind, namespace: review.request.namespace, name: review.request.name, outcome }, "admitted");
        if (!finish(res, started, outcome, operation, out)) return; // the deadline answered first: this decision was never applied
        if (out.response.patch) metrics.patches.inc({ webhook });
        const warnings = out.response.warnings ?? [];
        if (warnings.length > 0) metrics.warnings.inc({ webhook }, warnings.length);
        // Events get the full texts: the response's are shortened and capped for HTTP Warning headers.
        if (webhook === "pods" && !tooDeep && verdict.warnings.length > 0 && options.onPodWarnings) {
          try {
            options.onPodWarnings(review, verdict.warnings);
          } catch (err) {
            log.warn({ err, uid: review.request.uid }, "pod warnings not recorded");
          }
        }
      },
    );
  }
  app.use((_req, res) => {
    sendJson(res, 404, { message: `not found: ${ROUTES.map((r) => `POST ${r.path}`).join(" or ")}` });
  });
  app.use(clientErrorsOnly(log));
  app.use(jsonErrors);
  return app;
}

/**
 * Lets only errors meant for the client through to jsonErrors: body-parser's (http-errors marks
 * them `expose`: they describe the request body). Anything else, such as a Kubernetes API error
 * carrying an HTTP status and an RBAC message, is logged and answered with a plain 500.
 */
export function clientErrorsOnly(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if ((err as { expose?: unknown } | null)?.expose === true || res.headersSent) {
      next(err);
      return;
    }
    // A correlation id ties the caller's report to the log line without telling the caller anything.
    const errorId = randomUUID();
    log.error({ err, path: req.path, errorId }, "request failed");
    sendJson(res, 500, { message: `internal error ${errorId} (see the webhook's log)` });
  };
}
