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

describe("app-snapshots storage", () => {
  const fails = (args: string[]) => {
    try {
      execFileSync(process.execPath, [cli, ...args], { encoding: "utf8", stdio: "pipe", env: { ...process.env, POD_IP: "" } });
      return { status: 0, stderr: "" };
    } catch (err) {
      return err as { status: number; stderr: string };
    }
  };

  it("has the LVP sidecar's command as a bin", () => {
    expect(pkg.bin["local-volume-fileserver"]).toBe("dist/src/lvpFileserver.js");
  });

  it.each([
    [["storage", "--root", "/tmp", "--lvp-listen", "127.0.0.1:0", "--durability", "some"], '--durability must be full or none, not "some"'],
    [["storage", "--root", "/tmp"], "nothing to serve: give --s3-listen and/or --lvp-listen"],
    [["storage", "--root", "/tmp", "--lvp-listen", "localhost"], '"localhost" is not a listen address like :3000 or 127.0.0.1:3000'],
    [["storage", "sign", "velero/backups/x"], '"velero/backups/x" is not s3://bucket/key'],
    [["storage", "sign", "s3://velero/x", "--ttl", "ten minutes", "--base-url", "http://a"], '--ttl "ten minutes" is not a positive Go duration like 10m'],
    [["storage", "sign", "s3://velero/x"], "give --base-url (POD_IP is not set)"],
    [["storage", "sign", "s3://velero/x", "--ttl", "169h", "--base-url", "http://a"], '--ttl "169h" is longer than 168h: signed links live at most a week'],
  ])("refuses %j with a clear message", (args, message) => {
    const { status, stderr } = fails(args);
    expect(status).toBe(1);
    expect(stderr).toContain(message);
  });

  it("signs with a key from the environment", () => {
    const url = execFileSync(process.execPath, [cli, "storage", "sign", "s3://velero/backups/b1/b1-logs.gz", "--base-url", "http://10.0.0.1:3000"], {
      encoding: "utf8",
      env: { ...process.env, LVP_SIGNING_KEY: Buffer.from("0123456789abcdef").toString("base64") },
    });
    expect(url).toMatch(/^http:\/\/10\.0\.0\.1:3000\/velero\/backups\/b1\/b1-logs\.gz\?expires=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d\.\d{3}Z&signature=[A-Za-z0-9_-]{27}=\n$/);
  });
});
