import { describe, expect, it } from "vitest";
import { matchesSelector } from "../../../src/policy/selectors.js";

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
