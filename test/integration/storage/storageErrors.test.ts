import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../cluster/binaries.js";

const probe = join(repoRoot, "dist/test/storage/errorProbe.js");
const work = mkdtempSync(join(tmpdir(), "app-snapshots-errors-"));
// mkdtemp makes it 0700; the unprivileged probe must be able to walk into it.
chmodSync(work, 0o755);
afterAll(() => {
  spawnSync("umount", [join(work, "full")], { stdio: "ignore" });
  rmSync(work, { recursive: true, force: true });
});

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** Runs the probe as an unprivileged user: root drops to nobody; anyone else already is one. */
function runUnprivileged(root: string, scenario: string): Record<string, unknown> {
  const command = isRoot ? ["setpriv", "--reuid", String(NOBODY), "--regid", String(NOBODY), "--clear-groups", process.execPath, probe, root, scenario] : [process.execPath, probe, root, scenario];
  return JSON.parse(execFileSync(command[0]!, command.slice(1)).toString()) as Record<string, unknown>;
}

describe("storage failures surface as typed errors and lose nothing", () => {
  it("disk full: NoSpace with the path, the previous object intact, no temp file left", () => {
    // A 4 MiB tmpfs in a private mount namespace (user namespace when not root), so nothing leaks out.
    const root = join(work, "full");
    mkdirSync(root);
    const script = 'mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" "$3" "$1" disk-full';
    const run = spawnSync("unshare", ["--mount", "--map-root-user", "sh", "-c", script, "sh", root, process.execPath, probe]);
    expect(run.status, `unshare/mount failed: ${run.stderr.toString()}`).toBe(0);
    const result = JSON.parse(run.stdout.toString()) as { error: Record<string, string>; previous: string; temp: string[] };
    expect(result.error.code).toBe("NoSpace");
    expect(result.error.message).toMatch(/^no space left while writing object "backups\/b1\/b1\.tar\.gz" in bucket "velero": .*\/velero\/backups\/b1\/b1\.tar\.gz \(ENOSPC\)$/);
    expect(result.previous).toBe("the previous version");
    expect(result.temp).toEqual([]);
  });

  it("permission denied on the bucket: PermissionDenied with the path; nothing listed, no temp file left", () => {
    const root = join(work, "perm");
    mkdirSync(join(root, "velero"), { recursive: true });
    // The root (and so the internal folder) is writable by the probe's user; the bucket is not.
    if (isRoot) chownSync(root, NOBODY, NOBODY);
    chmodSync(join(root, "velero"), 0o555);
    const result = runUnprivileged(root, "read-only-bucket") as { error: Record<string, string>; objects: string[]; temp: string[] };
    expect(result.error.code).toBe("PermissionDenied");
    expect(result.error.message).toMatch(/^permission denied while writing object "backups\/b1\/b1\.tar\.gz" in bucket "velero": .*\/velero\/backups\/b1\/b1\.tar\.gz \(EACCES\)$/);
    expect(result.objects).toEqual([]);
    expect(result.temp).toEqual([]);
  });

  it("a root it cannot write: PermissionDenied naming the internal folder", () => {
    const root = join(work, "locked");
    mkdirSync(root);
    chmodSync(root, 0o555);
    const result = runUnprivileged(root, "open");
    expect(result.code).toBe("PermissionDenied");
    expect(result.message).toBe(`permission denied while preparing the store's internal folder: ${root}/.app-snapshots (EACCES)`);
  });
});
