import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const cli = "dist/src/cli.js";
const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string; bin: Record<string, string> };

describe("the app-snapshots CLI", () => {
  it("is the package's bin entry and is built", () => {
    expect(pkg.bin["app-snapshots"]).toBe(cli);
    expect(existsSync(cli), "dist/ is missing: run 'make build' (make test does)").toBe(true);
  });

  it("prints its version", () => {
    expect(execFileSync(process.execPath, [cli, "--version"], { encoding: "utf8" }).trim()).toBe(pkg.version);
  });

  it("prints help naming itself", () => {
    const help = execFileSync(process.execPath, [cli, "--help"], { encoding: "utf8" });
    expect(help).toContain("Usage: app-snapshots");
    expect(help).toContain("Velero");
  });

  it("rejects an unknown command with exit code 1 and a message", () => {
    try {
      execFileSync(process.execPath, [cli, "no-such-command"], { encoding: "utf8", stdio: "pipe" });
      expect.unreachable("the CLI accepted an unknown command");
    } catch (err) {
      const { status, stderr } = err as { status: number; stderr: string };
      expect(status).toBe(1);
      expect(stderr).toMatch(/unknown command|too many arguments/);
    }
  });
});
