import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(path.join(os.tmpdir(), "summary-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs test/summary.mjs on vitest JSON results (or on a missing file); its output lines and exit code. */
function summary(results: object | undefined): { lines: string[]; status: number | null } {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
  if (results) writeFileSync(file, JSON.stringify(results));
  const run = spawnSync(process.execPath, ["test/summary.mjs", file], { encoding: "utf8" });
  return { lines: run.stdout.trimEnd().split("\n"), status: run.status };
}

const file = (name: string, status: string, tests: string[]) => ({ name, status, assertionResults: tests.map((s) => ({ status: s })) });

describe("test/summary.mjs: the plain closing line CI reads", () => {
  it("prints the totals and exits 0 when everything passed", () => {
    expect(summary({ numPassedTests: 3, numFailedTests: 0, numPendingTests: 1, testResults: [file("a.test.ts", "passed", ["passed", "passed", "passed", "pending"])] })).toEqual({
      lines: ["tests: 3 passed, 0 failed, 1 skipped"],
      status: 0,
    });
  });

  it("counts failed tests, names their files and exits 1", () => {
    const out = summary({ numPassedTests: 2, numFailedTests: 1, testResults: [file("a.test.ts", "failed", ["passed", "failed"]), file("b.test.ts", "passed", ["passed"])] });
    expect(out).toEqual({ lines: ["failed file: a.test.ts", "tests: 2 passed, 1 failed, 0 skipped"], status: 1 });
  });

  it("counts a file that failed as a whole (it did not import) as a failure, which the test counts miss", () => {
    const out = summary({ numPassedTests: 5, numFailedTests: 0, testResults: [file("broken.test.ts", "failed", []), file("b.test.ts", "passed", ["passed"])] });
    expect(out.lines.at(-1)).toBe("tests: 5 passed, 1 failed, 0 skipped");
    expect(out.lines[0]).toMatch(/^failed file: broken\.test\.ts \(failed as a whole/);
    expect(out.status).toBe(1);
  });

  it("prints a failure when vitest wrote no results at all", () => {
    const out = summary(undefined);
    expect(out.lines.at(-1)).toBe("tests: 0 passed, 1 failed, 0 skipped");
    expect(out.status).toBe(1);
  });

  it("fails a run that executed no test", () => {
    expect(summary({ numPassedTests: 0, numFailedTests: 0, testResults: [] }).status).toBe(1);
  });
});
