import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admissionApp } from "../../../src/admission/server.js";
import { createAdmissionMetrics } from "../../../src/admission/metrics.js";
import { listen, type RunningServer } from "../../../src/server/http.js";
import { createLogger } from "../../../src/server/logger.js";
import { createMetricsRegistry } from "../../../src/server/metrics.js";
import type { ClusterState } from "../../../src/admission/state.js";
import { createReview, fixturePod, policyYaml, stateFrom } from "../pods/support.js";
import { awsSpec, bsl, veleroReview } from "../velero/support.js";

const registry = createMetricsRegistry({ defaultMetrics: false });
const metrics = createAdmissionMetrics(registry);
let state: () => ClusterState = () => stateFrom(policyYaml("p", "{}"));
let server: RunningServer;

beforeAll(async () => {
  server = await listen({ port: 0, handler: admissionApp({ state: () => state(), log: createLogger({ level: "silent", pretty: false }), metrics }) });
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
        warnings: ["app-snapshots: internal error; pod admitted unchanged (see the webhook's log)"],
      });
      expect(await registry.getSingleMetricAsString("app_snapshots_admission_requests_total")).toContain('outcome="error"');
    } finally {
      state = () => stateFrom(policyYaml("p", "{}"));
    }
  });

  it("fails closed on /validate/velero: an internal error denies with a message saying the webhook failed", async () => {
    state = () => {
      throw new Error("informer cache unavailable");
    };
    try {
      const review = veleroReview("BackupStorageLocation", "CREATE", bsl("default", awsSpec()));
      const { status, json } = await post(JSON.stringify(review), undefined, "/validate/velero");
      expect(status).toBe(200);
      expect(json.response).toEqual({
        uid: "b1",
        allowed: false,
        status: { code: 500, reason: "InternalError", message: "app-snapshots webhook failed, nothing was checked: informer cache unavailable" },
      });
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
    expect(elapsed).toBeGreaterThanOrEqual(850);
    expect(elapsed).toBeLessThan(1000);
  });

  it("answers 404 in JSON for other paths", async () => {
    const res = await fetch(`${server.url}/mutate/deployments`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: "not found: POST /mutate/pods or POST /validate/velero" });
  });

  it("counts requests, patches and latency", async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/app_snapshots_admission_requests_total\{webhook="pods",operation="CREATE",outcome="patched"\} [1-9]/);
    expect(text).toMatch(/app_snapshots_admission_patches_total\{webhook="pods"\} [1-9]/);
    expect(text).toMatch(/app_snapshots_admission_duration_seconds_bucket\{le="0.005",webhook="pods"\} [1-9]/);
  });
});
