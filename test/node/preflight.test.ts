// Where the real node cannot run, its suites and `make cluster` fail at once and say why.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../cluster/binaries.js";
import { hostSnapshot, readable } from "../cluster/node/hostSnapshot.js";
import { withoutNode } from "./gate.js";

describe.skipIf(withoutNode)("preflight", () => {
  it("refuses to start as a non-root user, naming the reason, before it changes anything", () => {
    const main = path.join(repoRoot, "dist", "test", "cluster", "node", "main.js");
    expect(existsSync(main)).toBe(true);
    const before = readable(hostSnapshot());
    const result = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, main], { encoding: "utf8", timeout: 30_000 });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("the real node cannot start here");
    expect(result.stderr).toContain("not root");
    expect(readable(hostSnapshot())).toEqual(before);
  });
});
