import { describe, expect, it } from "vitest";
import { parseWarningHeader } from "../../../src/kube/request.js";

describe("parseWarningHeader", () => {
  it("splits joined warnings and unescapes quotes", () => {
    expect(parseWarningHeader('299 - "app-snapshots: runs \\"a b\\" as ONE", 299 - "second, with comma"')).toEqual([
      'app-snapshots: runs "a b" as ONE',
      "second, with comma",
    ]);
  });
});
