import { describe, expect, it } from "vitest";
import { kubeRequest, parseWarningHeader } from "../../../src/kube/request.js";
import { silentApiserver } from "./silentApiserver.js";

describe("parseWarningHeader", () => {
  it("splits joined warnings and unescapes quotes", () => {
    expect(parseWarningHeader('299 - "app-snapshots: runs \\"a b\\" as ONE", 299 - "second, with comma"')).toEqual([
      'app-snapshots: runs "a b" as ONE',
      "second, with comma",
    ]);
  });
});

describe("kubeRequest", () => {
  it("fails, instead of hanging, when the apiserver accepts the connection and never answers", async () => {
    const { kc, close } = await silentApiserver();
    try {
      await expect(kubeRequest(kc, "GET", "/api/v1/namespaces/velero/secrets/keys", undefined, "application/json", 200)).rejects.toThrow(
        "GET /api/v1/namespaces/velero/secrets/keys: no answer within 200 ms",
      );
    } finally {
      close();
    }
  });
});
