// One real node at a time: the node's names (bridge, cgroup root, state dir) are fixed, so two runs would collide.
// The lock is a kernel flock held by util-linux flock(1) around a `cat` that reads our pipe: when this process
// dies in any way, the pipe closes, cat and flock exit and the kernel drops the lock. No stale lock files.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

export interface Lock {
  release(): Promise<void>;
}

const CONFLICT = 75;

export async function acquireLock(file: string): Promise<Lock> {
  const holder = spawn("flock", ["--nonblock", "--conflict-exit-code", String(CONFLICT), file, "sh", "-c", "echo locked; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => holder.once("exit", (code) => resolve(code)));
  let stderr = "";
  holder.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const locked = await new Promise<boolean>((resolve, reject) => {
    holder.once("error", reject);
    holder.stdout.once("data", () => resolve(true));
    void exited.then(() => resolve(false));
  });
  if (!locked) {
    const code = await exited;
    let owner = "unknown";
    try {
      owner = readFileSync(`${file}.owner`, "utf8").trim();
    } catch {
      // no owner note
    }
    throw new Error(
      code === CONFLICT
        ? `another real-node run holds ${file} (${owner}); stop it first (Ctrl-C in its terminal)`
        : `flock ${file} failed with exit code ${code}: ${stderr.trim()}`,
    );
  }
  writeFileSync(`${file}.owner`, `pid ${process.pid}, ${process.argv.slice(1).join(" ")}, since ${new Date().toISOString()}\n`);
  return {
    async release() {
      holder.stdin.end();
      await exited;
    },
  };
}
