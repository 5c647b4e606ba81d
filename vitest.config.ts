import { defineConfig } from "vitest/config";
import { pinnedVersions } from "./test/cluster/binaries.js";

// `make` runs vitest on the pinned Node.js (versions.env); say so at once when something else does, since
// test/unit/toolchain/pinnedNode.test.ts fails then and vitest's error report itself needs Node >= 22.
const pinned = `v${pinnedVersions().NODE}`;
if (process.version !== pinned) {
  console.warn(`vitest runs on Node.js ${process.version}, not the pinned ${pinned}: run it through make, or put .cache/node-${pinned.slice(1)}/bin first on PATH`);
}

const KOTS_SCENARIOS = "test/node/veleroKots.test.ts";

export default defineConfig({
  test: {
    reporters: ["default"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/cluster/globalSetup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // One control plane is shared; files run one after another to keep the 2-core machine calm.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "fuzz",
          // Time-bounded fuzzers of every parser facing the network (docs/security.md): FUZZ_SECONDS per file.
          include: ["test/fuzz/**/*.fuzz.test.ts"],
          testTimeout: 60_000,
          // One file at a time, after the unit tests: each keeps a core busy for its whole budget.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          // Each file starts its own control plane, Velero and storage service.
          testTimeout: 300_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          // Its own group, so it never shares the 2 cores with other files: vitest runs group 0 (unit), then
          // this, then the single-worker projects without a groupOrder (integration).
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: "node",
          // The real node (test/node, docs/real-node.md): needs root, runc and cgroups (test/node/gate.ts).
          include: ["test/node/**/*.test.ts"],
          exclude: [KOTS_SCENARIOS],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // One node at a time: its names, bridge and cgroups are fixed (the lock would refuse a second).
          fileParallelism: false,
          // Last and alone: a node is 2 cores' worth of start-up.
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          // Opt-in (make test-kots): the KOTS era's Velero 1.16 on the real node, then the move to 1.18. It takes
          // 4-5 minutes, which would take make test past its 15 (make test runs `--project '!kots'`).
          name: "kots",
          include: [KOTS_SCENARIOS],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
