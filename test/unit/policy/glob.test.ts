import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { globMatches, type GlobStats } from "../../../src/policy/glob.js";
import { parsePolicy } from "../../../src/policy/types.js";
import { admit } from "../../../src/admission/admit.js";
import type { Pod } from "../../../src/pods/pod.js";
import { createReview, policyYaml, stateFrom } from "../pods/support.js";

/** The reference: the textbook dynamic programme over (pattern prefix, name prefix). */
function oracle(pattern: string, name: string): boolean {
  const m = pattern.length;
  const n = name.length;
  let row = Array.from({ length: n + 1 }, (_, j) => j === 0);
  for (let i = 1; i <= m; i++) {
    const p = pattern[i - 1];
    const next = Array.from({ length: n + 1 }, () => false);
    next[0] = p === "*" && row[0]!;
    for (let j = 1; j <= n; j++) {
      next[j] = p === "*" ? row[j]! || next[j - 1]! : row[j - 1]! && (p === "?" || p === name[j - 1]);
    }
    row = next;
  }
  return row[n]!;
}

describe("volume-name globs", () => {
  it("treats regex characters literally", () => {
    expect(globMatches("data.0", "data.0")).toBe(true);
    expect(globMatches("data.0", "dataX0")).toBe(false);
    expect(globMatches("(a|b)", "a")).toBe(false);
    expect(globMatches("istio-*", "istio-envoy")).toBe(true);
    expect(globMatches("?ache", "cache")).toBe(true);
    expect(globMatches("?ache", "ache")).toBe(false);
    expect(globMatches("", "")).toBe(true);
    expect(globMatches("", "a")).toBe(false);
    expect(globMatches("a*a", "a")).toBe(false);
    expect(globMatches("*ab*ba*", "aba")).toBe(false);
    expect(globMatches("*ab*ba*", "abba")).toBe(true);
  });

  it("matches every name by itself and with *", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (name) => {
        expect(globMatches(name.replace(/[*?]/g, ""), name.replace(/[*?]/g, ""))).toBe(true);
        expect(globMatches("*", name)).toBe(true);
      }),
    );
  });

  it("agrees with a dynamic-programming reference on multi-wildcard patterns over a small alphabet", () => {
    const pattern = fc.array(fc.constantFrom("a", "b", "*", "?"), { maxLength: 12 }).map((cs) => cs.join(""));
    const name = fc.array(fc.constantFrom("a", "b"), { maxLength: 16 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(pattern, name, (p, n) => {
        expect(globMatches(p, n)).toBe(oracle(p, n));
      }),
      { numRuns: 20_000 },
    );
  });

  it("agrees with the reference on segments longer than one 32-bit word", () => {
    const long = fc.array(fc.constantFrom("a", "b", "?"), { minLength: 30, maxLength: 70 }).map((cs) => cs.join(""));
    const pattern = fc.tuple(long, long).map(([x, y]) => `*${x}*${y}`);
    const name = fc.array(fc.constantFrom("a", "b"), { minLength: 60, maxLength: 200 }).map((cs) => cs.join(""));
    const planted = fc.tuple(pattern, name).map(([p, n]) => [p, n + p.replace(/\*/g, "").replace(/\?/g, "b")] as const);
    fc.assert(
      fc.property(fc.oneof(fc.tuple(pattern, name), planted), ([p, n]) => {
        expect(globMatches(p, n)).toBe(oracle(p, n));
      }),
      { numRuns: 500 },
    );
  });

  it("examines each name position a bounded number of times, whatever the number of stars", () => {
    for (const length of [60, 600, 6000]) {
      const name = `${"a".repeat(length)}b`;
      for (const stars of [2, 4, 6]) {
        const stats: GlobStats = { steps: 0 };
        // The anchored last segment fits; the middle ones consume the a's, then "c" scans the rest.
        expect(globMatches(`${"*a".repeat(stars)}*c*b`, name, stats)).toBe(false);
        // Each name position is examined once by one segment search, plus the anchored ends.
        expect(stats.steps).toBeLessThanOrEqual(name.length + 1);
        expect(stats.steps).toBeGreaterThanOrEqual(length);
      }
    }
  });

  it("decides a pod admission with the pathological pattern in under 10 ms (best of 5)", () => {
    const state = stateFrom(policyYaml("p", 'volumes: { include: ["*a*a*a*a*a*a*b"], exclude: ["*a*a*a*a*a*a*c"] }'));
    const name = "a".repeat(60);
    const pod: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "shop" },
      spec: {
        containers: [{ name: "app", volumeMounts: Array.from({ length: 8 }, (_, i) => ({ name: `${name.slice(1)}${i}`, mountPath: `/m${i}` })) }],
        volumes: Array.from({ length: 8 }, (_, i) => ({ name: `${name.slice(1)}${i}`, emptyDir: {} })),
      },
    };
    const review = createReview(pod, "shop");
    const runs = Array.from({ length: 5 }, () => {
      const start = performance.now();
      expect(admit(review, state).response.allowed).toBe(true);
      return performance.now() - start;
    });
    expect(Math.min(...runs)).toBeLessThan(10);
  });

  it("bounds a policy's patterns like the CRD: at most 8 stars, 128 characters", () => {
    const policy = (include: string[]) => ({ apiVersion: "appsnapshots.io/v1alpha1", kind: "SnapshotPolicy", metadata: { name: "p", namespace: "shop" }, spec: { volumes: { include } } });
    expect(parsePolicy(policy(["*a*a*a*a*a*a*a*b"])).spec.volumes.include).toEqual(["*a*a*a*a*a*a*a*b"]);
    expect(() => parsePolicy(policy(["*a*a*a*a*a*a*a*a*b"]))).toThrow('SnapshotPolicy p: spec.volumes.include.0: at most 8 "*" per pattern');
    expect(() => parsePolicy(policy(["x".repeat(129)]))).toThrow("spec.volumes.include.0");
  });
});
