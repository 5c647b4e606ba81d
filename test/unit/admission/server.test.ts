import http from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admissionApp, answerDeadlineMs, clientErrorsOnly } from "../../../src/admission/server.js";
import { WARNING_PREFIX, formatWarnings } from "../../../src/admission/warnings.js";
import { createAdmissionMetrics } from "../../../src/admission/metrics.js";
import { listen, type RunningServer } from "../../../src/server/http.js";
import { collectingLogger } from "../../logging/collectingLogger.js";
import { createMetricsRegistry } from "../../../src/server/metrics.js";
import type { ClusterState } from "../../../src/admission/state.js";
import type { AdmissionReview } from "../../../src/admission/review.js";
import { KubeRequestError } from "../../../src/kube/request.js";
import { createReview, fixturePod, policyYaml, stateFrom } from "../pods/support.js";
import { awsSpec, bsl, veleroReview } from "../velero/support.js";

const registry = createMetricsRegistry({ defaultMetrics: false });
const metrics = createAdmissionMetrics(registry);
let state: () => ClusterState = () => stateFrom(policyYaml("p", "{}"));
let server: RunningServer;
const { log, lines } = collectingLogger("debug");
const logged = () => lines.map((l) => JSON.parse(l) as { msg: string; uid?: string; err?: { message?: string } });
const podWarnings: Array<{ uid: string; warnings: readonly string[] }> = [];
let onPodWarnings: (review: AdmissionReview, warnings: readonly string[]) => void = (review, warnings) => podWarnings.push({ uid: review.request.uid, warnings });

beforeAll(async () => {
  server = await listen({ port: 0, handler: admissionApp({ state: () => state(), log, metrics, onPodWarnings: (review, warnings) => onPodWarnings(review, warnings) }) });
});
afterAll(() => server.close(100));

async function post(body: string | Buffer, headers: Record<string, string> = { "content-type": "application/json" }, path = "/mutate/pods") {
  const res = await fetch(`${server.url}${path}`, { method: "POST", body, headers });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("POST /mutate/pods", () => {
  it("answers a review with the patch", async () => {
    const { status, json } = await post(JSON.stringify(createReview(fixturePod("postgres-statefulset"))));
    expect(status).toBe(200);
    expect(json).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { allowed: true, patchType: "JSONPatch" } });
  });

  it.each([
    ["malformed JSON", "{", 400, /^request body is not valid JSON/],
    ["a JSON array", "[]", 400, /^not an AdmissionReview: Invalid input: expected object, received array/],
    ["an object that is not a review", '{"kind":"Pod"}', 400, /^not an AdmissionReview: apiVersion/],
    ["10k-deep nesting", "[".repeat(10_000) + "]".repeat(10_000), 400, /^not an AdmissionReview/],
  ])("answers %s with a 400 naming the problem", async (_name, body, code, message) => {
    const { status, json } = await post(body);
    expect(status).toBe(code);
    expect(json.message).toMatch(message);
  });

  it("refuses bodies over 7 MB with 413 and keeps serving", async () => {
    const big = JSON.stringify({ ...createReview(fixturePod("postgres-statefulset")), pad: "x".repeat(7 * 1024 * 1024) });
    const { status, json } = await post(big);
    expect(status).toBe(413);
    expect(json.message).toBe("request body exceeds 7340032 bytes");
    expect((await post(JSON.stringify(createReview(fixturePod("postgres-statefulset"))))).status).toBe(200);
  });

  it("refuses non-JSON content types with 415", async () => {
    expect((await post("a=b", { "content-type": "application/x-www-form-urlencoded" })).status).toBe(415);
  });

  it("fails open on an internal error: allowed, no patch, a warning, counted", async () => {
    state = () => {
      throw new Error("boom");
    };
    try {
      const { status, json } = await post(JSON.stringify(createReview(fixturePod("postgres-statefulset"))));
      expect(status).toBe(200);
      expect(json.response).toEqual({
        uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
        allowed: true,
        warnings: ["app-snapshots: internal error; pod admitted unchanged (request 705ab4f5-6393-11e8-b7cc-42010a800002; see the webhook's log)"],
      });
      expect(await registry.getSingleMetricAsString("app_snapshots_admission_requests_total")).toContain('outcome="error"');
    } finally {
      state = () => stateFrom(policyYaml("p", "{}"));
    }
  });

  it("fails closed on /validate/velero: an internal error denies with a fixed message and the request uid, never the error's text", async () => {
    state = () => {
      // What a lookup without RBAC throws: its text must stay in the log.
      throw new KubeRequestError(403, { message: 'secrets "cloud" is forbidden: User "system:serviceaccount:app-snapshots:webhook" cannot get resource "secrets"' }, "GET", "/api/v1/namespaces/velero/secrets/cloud");
    };
    try {
      const review = veleroReview("BackupStorageLocation", "CREATE", bsl("default", awsSpec()));
      const { status, json } = await post(JSON.stringify(review), undefined, "/validate/velero");
      expect(status).toBe(200);
      expect(json.response).toEqual({
        uid: "b1",
        allowed: false,
        status: { code: 500, reason: "InternalError", message: "app-snapshots webhook failed, nothing was checked (request b1; see the webhook's log)" },
      });
      expect(JSON.stringify(json)).not.toMatch(/forbidden|serviceaccount|secrets/);
      expect(logged().find((l) => l.msg === "admission failed" && l.uid === "b1")).toMatchObject({ uid: "b1", err: { message: expect.stringContaining("forbidden") as unknown } });
    } finally {
      state = () => stateFrom(policyYaml("p", "{}"));
    }
  });

  it("never answers a pod review on the Velero path with a patch, nor a Velero review on the pod path with a denial", async () => {
    const onVelero = await post(JSON.stringify(createReview(fixturePod("postgres-statefulset"))), undefined, "/validate/velero");
    expect(onVelero.json.response).toEqual({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
    const broken = veleroReview("BackupStorageLocation", "CREATE", bsl("x", { provider: "aws", objectStorage: { bucket: "a/b" } }));
    const onPods = await post(JSON.stringify(broken), undefined, "/mutate/pods");
    expect(onPods.json.response).toEqual({ uid: "b1", allowed: true });
  });

  it("sets the answer deadline 10 % (at least 100 ms) before the apiserver's timeout, 10 s when none is given", () => {
    expect(answerDeadlineMs("1s")).toBe(900);
    expect(answerDeadlineMs("10s")).toBe(9_000);
    expect(answerDeadlineMs(undefined)).toBe(9_000);
    expect(answerDeadlineMs("not a duration")).toBe(9_000);
    expect(answerDeadlineMs("500ms")).toBe(400);
    expect(answerDeadlineMs("50ms")).toBe(0);
    expect(answerDeadlineMs("1h")).toBe(27_000); // the apiserver caps webhook timeouts at 30 s
  });

  it("answers before the apiserver's ?timeout= when the body stalls", async () => {
    const started = Date.now();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${server.url}/mutate/pods?timeout=1s`, { method: "POST", headers: { "content-type": "application/json", "content-length": "1000" } }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.write('{"apiVersion":'); // and never finish
    });
    const elapsed = Date.now() - started;
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toEqual({ message: "request body did not arrive before the deadline" });
    // Not before the answer deadline (90 % of the 1 s timeout); how soon after it depends on the machine's load,
    // and answerDeadlineMs's own test pins the deadline itself.
    expect(elapsed).toBeGreaterThanOrEqual(answerDeadlineMs("1s") - 5);
  });

  it("answers 404 in JSON for other paths", async () => {
    const res = await fetch(`${server.url}/mutate/deployments`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: "not found: POST /mutate/pods or POST /validate/velero" });
  });

  it("hands a pod response's warnings to onPodWarnings after answering, and nothing else", async () => {
    podWarnings.length = 0;
    const quiet = await post(JSON.stringify(createReview(fixturePod("postgres-statefulset"))));
    expect(quiet.json.response).not.toHaveProperty("warnings");
    const noisy = await post(JSON.stringify(createReview(fixturePod("handwritten-annotations"), "shop", "CREATE")));
    const sent = (noisy.json.response as { warnings: string[] }).warnings;
    expect(sent.length).toBeGreaterThan(0);
    await post(JSON.stringify(veleroReview("BackupStorageLocation", "CREATE", bsl("x", { provider: "aws", objectStorage: { bucket: "a/b" } }))), undefined, "/validate/velero");
    // The full texts, which the response carries shortened, prefixed and capped.
    expect(podWarnings).toHaveLength(1);
    expect(podWarnings[0]!.uid).toBe("705ab4f5-6393-11e8-b7cc-42010a800002");
    expect(podWarnings[0]!.warnings.some((w) => w.startsWith(WARNING_PREFIX))).toBe(false);
    expect(formatWarnings(podWarnings[0]!.warnings)).toEqual(sent);
  });

  it("answers a pod review normally when onPodWarnings throws", async () => {
    onPodWarnings = () => {
      throw new Error("recorder broken");
    };
    try {
      const { status, json } = await post(JSON.stringify(createReview(fixturePod("handwritten-annotations"), "shop")));
      expect(status).toBe(200);
      expect(json.response).toMatchObject({ allowed: true, patchType: "JSONPatch" });
      expect(logged().some((l) => l.msg === "pod warnings not recorded")).toBe(true);
    } finally {
      onPodWarnings = (review, warnings) => podWarnings.push({ uid: review.request.uid, warnings });
    }
  });

  it("answers a request nested 100,000 deep by its route before reading state, lookups or recording Events: a Velero object denied, a pod admitted unchanged", async () => {
    // Built as text: JSON.stringify of the value itself overflows the stack.
    const DEEP = "\u0001deep";
    const withDeep = (review: unknown) => JSON.stringify(review).replace(`"\\u0001deep"`, `${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    state = () => {
      throw new Error("state must not be read");
    };
    podWarnings.length = 0;
    const linesBefore = lines.length;
    try {
      const location = veleroReview("BackupStorageLocation", "UPDATE", { ...bsl("default", awsSpec()), spec: DEEP }, bsl("default", awsSpec()));
      const velero = await post(withDeep(location), undefined, "/validate/velero");
      expect(velero.status).toBe(200);
      const denial = velero.json.response as { allowed: boolean; status: { code: number; message: string } };
      expect(denial.allowed).toBe(false);
      expect(denial.status.code).toBe(422);
      expect(denial.status.message).toContain("is nested deeper than 100 levels");
      const pod = fixturePod("handwritten-annotations");
      const pods = await post(withDeep(createReview({ ...pod, metadata: { ...pod.metadata, name: DEEP } }, "shop")));
      expect(pods.status).toBe(200);
      const admitted = pods.json.response as { allowed: boolean; warnings: string[]; patch?: string };
      expect(admitted.allowed).toBe(true);
      expect(admitted.warnings.join()).toContain("nested deeper than 100 levels");
      expect(admitted.patch).toBeUndefined();
      expect(podWarnings).toEqual([]);
      expect(lines.slice(linesBefore).map((l) => JSON.parse(l) as { level: number }).filter((l) => l.level >= 40)).toEqual([]);
    } finally {
      state = () => stateFrom(policyYaml("p", "{}"));
    }
  });

  it("counts requests, patches and latency", async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/app_snapshots_admission_requests_total\{webhook="pods",operation="CREATE",outcome="patched"\} [1-9]/);
    expect(text).toMatch(/app_snapshots_admission_patches_total\{webhook="pods"\} [1-9]/);
    expect(text).toMatch(/app_snapshots_admission_duration_seconds_bucket\{le="0.005",webhook="pods"\} [1-9]/);
  });
});

describe("errors that are not the client's", () => {
  let app: RunningServer;
  beforeAll(async () => {
    const handler = express();
    handler.post("/boom", () => {
      throw new KubeRequestError(403, { message: 'events.events.k8s.io is forbidden: User "system:serviceaccount:x:webhook"' }, "POST", "/apis/events.k8s.io/v1/namespaces/x/events");
    });
    handler.post("/client", express.json(), () => undefined);
    handler.use(clientErrorsOnly(log));
    app = await listen({ port: 0, handler });
  });
  afterAll(() => app.close(100));

  it("answer a plain 500 with a correlation id and without their text (an error carrying a 4xx status is not the client's fault)", async () => {
    const res = await fetch(`${app.url}/boom`, { method: "POST" });
    expect(res.status).toBe(500);
    const text = await res.text();
    const { message } = JSON.parse(text) as { message: string };
    const id = /^internal error ([0-9a-f-]{36}) \(see the webhook's log\)$/.exec(message)?.[1];
    expect(id, message).toBeDefined();
    // Neither the error's text, its class, nor a stack frame reaches the caller.
    for (const leak of ["forbidden", "KubeRequestError", "serviceaccount", " at ", ".ts:", ".js:"]) expect(text).not.toContain(leak);
    const line = logged().find((l) => (l as { errorId?: string }).errorId === id);
    expect(line?.err?.message).toContain("forbidden");
  });

  it("pass body-parser's errors (about the client's own input) on to jsonErrors", async () => {
    const res = await fetch(`${app.url}/client`, { method: "POST", body: "{", headers: { "content-type": "application/json" } });
    // No jsonErrors mounted here: Express's default handler shows the status it was given.
    expect(res.status).toBe(400);
  });
});

describe("POST /validate/velero when no decision comes in time", () => {
  let slow: RunningServer;
  beforeAll(async () => {
    slow = await listen({
      port: 0,
      handler: admissionApp({
        state: () => stateFrom(policyYaml("p", "{}")),
        log,
        metrics: createAdmissionMetrics(createMetricsRegistry({ defaultMetrics: false })),
        prepareVelero: () => new Promise(() => undefined),
      }),
    });
  });
  afterAll(() => slow.close(100));

  it("denies with a fixed message naming the request, and logs it", async () => {
    const review = veleroReview("BackupStorageLocation", "CREATE", bsl("default", awsSpec()));
    const res = await fetch(`${slow.url}/validate/velero?timeout=1s`, { method: "POST", body: JSON.stringify(review), headers: { "content-type": "application/json" } });
    expect(((await res.json()) as { response: unknown }).response).toEqual({
      uid: "b1",
      allowed: false,
      status: { code: 500, reason: "InternalError", message: "app-snapshots webhook could not decide in time, nothing was checked (request b1; see the webhook's log)" },
    });
    expect(logged().find((l) => l.msg === "no decision before the apiserver's timeout")?.uid).toBe("b1");
  });
});
