import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import type { ClientTool } from "./clientTools.js";

/**
 * Runs a real S3 client (test/s3/clientTools.ts) as an ASYNCHRONOUS child process. The S3 server of
 * test/s3/harness.ts lives in the test process, so a synchronous spawn would stall its event loop and
 * deadlock the client; everything here is promise based.
 */

export interface ToolRun {
  /** The command line, for messages. */
  commandLine: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export interface RunOptions {
  /** Added over process.env and the tool's env; `undefined` removes a variable (e.g. a machine-wide AWS_CA_BUNDLE). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** SIGKILL after this long (default 120 s); the run then counts as failed. */
  timeoutMs?: number;
  /** Kills the child when aborted (pass vitest's test-context signal). */
  signal?: AbortSignal;
  /** Written to stdin, which is then closed (stdin is otherwise empty). */
  input?: string;
}

/** Output kept per stream; beyond it the head is dropped (failures are explained by the tail). */
const MAX_OUTPUT = 8 * 1024 * 1024;

const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((file) => existsSync(file));

function collector(): { push(chunk: Buffer): void; text(): string } {
  let chunks: Buffer[] = [];
  let size = 0;
  return {
    push(chunk) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > 2 * MAX_OUTPUT) {
        const all = Buffer.concat(chunks);
        chunks = [all.subarray(all.length - MAX_OUTPUT)];
        size = MAX_OUTPUT;
      }
    },
    text() {
      const all = Buffer.concat(chunks);
      return all.subarray(Math.max(0, all.length - MAX_OUTPUT)).toString("utf8");
    },
  };
}

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);

/** Runs `tool` with `args`; resolves with the exit status and output whatever the status. */
export function runTool(tool: ClientTool, args: string[], options: RunOptions = {}): Promise<ToolRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...tool.env };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const argv = [...tool.args, ...args];
  const commandLine = [path.basename(tool.command), ...argv].map(quote).join(" ");
  // With setpriv the kernel kills the client if the test runner dies, so no client outlives a run.
  const [file, fileArgs] = setpriv ? [setpriv, ["--pdeathsig", "SIGKILL", "--", tool.command, ...argv]] : [tool.command, argv];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, fileArgs, { env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    const stdout = collector();
    const stderr = collector();
    let timedOut = false;
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs ?? 120_000);
    options.signal?.addEventListener("abort", kill, { once: true });
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
    child.once("error", (err) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", kill);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", kill);
      resolve({ commandLine, code, signal, stdout: stdout.text(), stderr: stderr.text(), ms: Math.round(performance.now() - started), timedOut });
    });
  });
}

function tail(text: string, lines: number): string {
  const all = text.trimEnd().split("\n");
  return (all.length > lines ? [`… (${all.length - lines} lines before)`, ...all.slice(-lines)] : all).join("\n");
}

/** A readable account of a run: command, status, time, and the tails of stderr and stdout. */
export function describeRun(run: ToolRun, lines = 80): string {
  const status = run.timedOut ? "timed out (killed)" : run.signal ? `was killed by ${run.signal}` : `exited with ${run.code}`;
  return [
    `$ ${run.commandLine}`,
    `${status} after ${run.ms} ms`,
    `--- stderr ---`,
    tail(run.stderr, lines) || "(empty)",
    `--- stdout ---`,
    tail(run.stdout, lines) || "(empty)",
  ].join("\n");
}

/** Runs the tool and requires exit status 0; otherwise throws with the command line and the output tails. */
export async function runToolOk(tool: ClientTool, args: string[], options: RunOptions = {}): Promise<ToolRun> {
  const run = await runTool(tool, args, options);
  if (run.code !== 0 || run.timedOut) throw new Error(`client failed:\n${describeRun(run)}`);
  if (process.env.S3_CLIENT_LOG === "1") console.log(describeRun(run, 20));
  return run;
}
