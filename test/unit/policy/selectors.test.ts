import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { globMatches, matchesSelector } from "../../../src/policy/selectors.js";

describe("label selectors", () => {
  const labels = { app: "web", tier: "frontend" };
  it.each([
    [undefined, true],
    [{}, true],
    [{ matchLabels: { app: "web" } }, true],
    [{ matchLabels: { app: "db" } }, false],
    [{ matchExpressions: [{ key: "tier", operator: "In" as const, values: ["frontend", "edge"] }] }, true],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn" as const, values: ["frontend"] }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "Exists" as const }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "DoesNotExist" as const }] }, false],
    [{ matchLabels: { app: "web" }, matchExpressions: [{ key: "zone", operator: "Exists" as const }] }, false],
  ])("%j matches app=web,tier=frontend: %s", (selector, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });
});

describe("volume-name globs", () => {
  it("treats regex characters literally", () => {
    expect(globMatches("data.0", "data.0")).toBe(true);
    expect(globMatches("data.0", "dataX0")).toBe(false);
    expect(globMatches("(a|b)", "a")).toBe(false);
    expect(globMatches("istio-*", "istio-envoy")).toBe(true);
    expect(globMatches("?ache", "cache")).toBe(true);
    expect(globMatches("?ache", "ache")).toBe(false);
  });
  it("matches every name by itself and with *", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (name) => {
        expect(globMatches(name.replace(/[*?]/g, ""), name.replace(/[*?]/g, ""))).toBe(true);
        expect(globMatches("*", name)).toBe(true);
      }),
    );
  });
});
