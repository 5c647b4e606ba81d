import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admissionApp } from "../../src/admission/server.js";
import { createAdmissionMetrics } from "../../src/admission/metrics.js";
import type { ClusterState } from "../../src/admission/state.js";
import { listen, type RunningServer } from "../../src/server/http.js";
import { createMetricsRegistry } from "../../src/server/metrics.js";
import { createReview, fixturePod, policyYaml, stateFrom } from "../unit/pods/support.js";
import { awsSpec, bsl, veleroReview, veleroState } from "../unit/velero/support.js";
import { fileBudgetSeconds, fuzz, fuzzTimeoutMs } from "./support/budget.js";
import { errorCollectingLogger } from "../logging/collectingLogger.js";
import { exchange } from "./support/exchange.js";
import { applyJsonMutations, jsonMutations, serialize } from "./support/jsonMutate.js";
import { applyMutations, mutations } from "./support/mutate.js";

/**
 * The admission webhook's HTTP server (both routes) under hostile AdmissionReview bodies: real
 * reviews of fixture pods and Velero objects, mutated as JSON (wrong types, deleted fields, huge or
 * deeply nested values) and as bytes, with odd content types and ?timeout= values. Oracles: never a
 * 5xx, never a hang, never an error log, and never the "internal error" answer (a review the code
 * could not handle); a 200 is a well-formed AdmissionReview answering the request's uid.
 */

const FUZZERS = 2;
const seconds = fileBudgetSeconds() / FUZZERS;
const { log, errors } = errorCollectingLogger();
const podState = stateFrom(policyYaml("p", "hooks: { preBackup: { command: [sync] } }", "default") + policyYaml("q", "{}", "shop"));
const veleroStateNow = veleroState([bsl("default", awsSpec())]);
let server: RunningServer;

beforeAll(async () => {
  const state = (): ClusterState => podState;
  server = await listen({
    port: 0,
    handler: admissionApp({
      state,
      log,
      metrics: createAdmissionMetrics(createMetricsRegistry({ defaultMetrics: false })),
      prepareVelero: () => Promise.resolve(veleroStateNow),
      onPodWarnings: () => undefined,
    }),
  });
});
afterAll(() => server?.close(100));

const PODS = ["postgres-statefulset", "istio-sidecar", "hostpath-and-block", "handwritten-annotations", "cronjob-pod", "database-special-volumes"];
const podReview = fc.constantFrom(...PODS).map((name) => ({ path: "/mutate/pods", review: createReview(fixturePod(name)) }));
const veleroReviewArb = fc
  .constantFrom(
    () => veleroReview("BackupStorageLocation", "CREATE", bsl("second", awsSpec())),
    () => veleroReview("BackupStorageLocation", "UPDATE", bsl("default", awsSpec({}, { s3Url: "http://elsewhere:9000" })), bsl("default", awsSpec())),
    () => veleroReview("BackupStorageLocation", "DELETE", undefined, bsl("default", awsSpec())),
    () => veleroReview("Backup", "CREATE", { apiVersion: "velero.io/v1", kind: "Backup", metadata: { name: "b", namespace: "velero" }, spec: { storageLocation: "default", includedNamespaces: ["*"], ttl: "720h" } }),
    () => veleroReview("Schedule", "CREATE", { apiVersion: "velero.io/v1", kind: "Schedule", metadata: { name: "s", namespace: "velero" }, spec: { schedule: "@daily", template: { ttl: "1h" } } }),
    () => veleroReview("Restore", "CREATE", { apiVersion: "velero.io/v1", kind: "Restore", metadata: { name: "r", namespace: "velero" }, spec: { backupName: "b" } }),
  )
  .map((make) => ({ path: "/validate/velero", review: make() }));

const TIMEOUTS = ["", "?timeout=10s", "?timeout=0s", "?timeout=-1s", "?timeout=1ms", "?timeout=999999h", "?timeout=abc", "?timeout=10s&timeout=5s", "?timeout=%zz"];
const CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/json; charset=latin1", "application/merge-patch+json"];

const input = fc.record({
  target: fc.oneof(podReview, veleroReviewArb),
  json: fc.option(jsonMutations, { nil: undefined }),
  bytes: fc.option(mutations, { nil: undefined }),
  timeout: fc.constantFrom(...TIMEOUTS),
  contentType: fc.constantFrom(...CONTENT_TYPES),
});

async function post(path: string, body: Buffer, contentType: string, complete: boolean) {
  const head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n${contentType ? `content-type: ${contentType}\r\n` : ""}content-length: ${body.length}\r\n\r\n`;
  return exchange(server.port, Buffer.concat([Buffer.from(head), body]), { complete });
}

describe("admission webhook under fuzzing", () => {
  it("AdmissionReview bodies mutated as JSON: a 400 naming the problem or a well-formed review, never a 5xx or an internal error", { timeout: fuzzTimeoutMs(seconds) }, async () => {
    await fuzz("admission json", seconds, input, async ({ target, json, timeout, contentType }) => {
      const review = json ? applyJsonMutations(target.review, json) : target.review;
      const { response, statuses } = await post(`${target.path}${timeout}`, Buffer.from(serialize(review)), contentType, true);
      expect(statuses.filter((s) => s >= 500), response?.text.slice(0, 300)).toEqual([]);
      expect(errors.splice(0), "the webhook logged an error").toEqual([]);
      expect(response, "no answer").toBeDefined();
      const answer = JSON.parse(response!.text) as Record<string, unknown>;
      if (response!.status !== 200) {
        expect([400, 408, 413, 415], response!.text).toContain(response!.status);
        expect(typeof answer.message).toBe("string");
        return;
      }
      expect(answer).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" });
      const uid = (review as { request?: { uid?: unknown } }).request?.uid;
      const out = answer.response as { uid: unknown; allowed: unknown; warnings?: string[]; status?: { code?: number }; patch?: string; patchType?: string };
      expect(out.uid).toBe(uid);
      expect(typeof out.allowed).toBe("boolean");
      expect(out.status?.code ?? 0, `an internal error answer: ${JSON.stringify(out)}`).toBeLessThan(500);
      expect((out.warnings ?? []).join("\n"), "an internal error answer").not.toMatch(/internal error|no decision in time/);
      if (out.patch !== undefined) {
        expect(out.patchType).toBe("JSONPatch");
        expect(Array.isArray(JSON.parse(Buffer.from(out.patch, "base64").toString("utf8")))).toBe(true);
      }
    });
  });

  it("AdmissionReview bodies mutated as bytes: no 5xx, hang or error log", { timeout: fuzzTimeoutMs(seconds) }, async () => {
    await fuzz("admission bytes", seconds, input, async ({ target, bytes, timeout, contentType }) => {
      const body = Buffer.from(JSON.stringify(target.review));
      const request = Buffer.concat([Buffer.from(`POST ${target.path}${timeout} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\n\r\n`), body]);
      const { response, statuses } = await exchange(server.port, bytes ? applyMutations(request, bytes) : request, { complete: !bytes });
      expect(statuses.filter((s) => s >= 500), response?.text.slice(0, 300)).toEqual([]);
      expect(errors.splice(0), "the webhook logged an error").toEqual([]);
    });
  });
});
