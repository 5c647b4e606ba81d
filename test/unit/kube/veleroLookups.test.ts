// Velero lookups at admission (Secrets' keys, the Velero Deployment, the node count) are bounded: an apiserver
// that accepts and never answers must not hold the admission past its own timeout, which fails it closed.
import { describe, expect, it } from "vitest";
import { buildClusterState } from "../../../src/admission/state.js";
import { VeleroLookups } from "../../../src/kube/veleroLookups.js";
import { awsSpec, bsl, veleroReview } from "../velero/support.js";
import { silentApiserver } from "./silentApiserver.js";

describe("VeleroLookups", () => {
  it("answers within its timeout when the apiserver never does, with the Secrets, the server and the nodes unknown", async () => {
    const { kc, close } = await silentApiserver();
    const failed: string[] = [];
    const lookups = new VeleroLookups(kc, { checkSecretKeys: true, timeoutMs: 300, onLookupFailed: (what, err) => failed.push(`${what}: ${String(err)}`) });
    const state = buildClusterState({ objects: [] });
    try {
      const prepared = await lookups.prepare(veleroReview("BackupStorageLocation", "CREATE", bsl("default", awsSpec())), state);
      expect(prepared.velero.secrets).toBeUndefined();
      expect(prepared.velero.versions.size).toBe(0);
      expect(prepared.velero.nodeCount).toBeUndefined();
      expect(failed.sort()).toEqual([
        "Secrets cloud-credentials: Error: no answer within 300 ms",
        "the Velero Deployment in velero: Error: no answer within 300 ms",
        "the node count: Error: no answer within 300 ms",
      ]);
    } finally {
      close();
    }
  });
});
