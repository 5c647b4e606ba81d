// The real node's suites: `make node-test` (root). Not a project of the root vitest.config.ts, so `make test`
// does not run them (yet).
import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: path.resolve(import.meta.dirname, "..", ".."),
  test: {
    reporters: ["default"],
    projects: [
      { test: { name: "node-unit", include: ["test/node/unit/**/*.test.ts"], testTimeout: 20_000 } },
      {
        test: {
          name: "node",
          include: ["test/node/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // One node at a time: its names, bridge and cgroups are fixed (the lock would refuse a second).
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
