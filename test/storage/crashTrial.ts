/**
 * One crash trial, shared by the vitest test and the soak script: start the writer child on a
 * fresh root, SIGKILL it at a random moment while it writes, reopen the store and check it.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkCrash, type KeyState, type OpKind } from "./crashCheck.js";

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith(".ts");
const repo = fromSource ? join(here, "..", "..") : join(here, "..", "..", "..");
const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((file) => existsSync(file));

/** A compiled writer child. Under vitest (running the .ts sources) it must be built and not older than its sources. */
export function writerScript(name = "crashWriter.js"): string {
  const script = fromSource ? join(repo, "dist", "test", "storage", name) : join(here, name);
  const built = statSync(script, { throwIfNoEntry: false });
  if (!built) throw new Error(`${script} is missing: run npx tsc -p tsconfig.build.json first`);
  if (fromSource) {
    const sources = [join(repo, "test", "storage"), join(repo, "src", "storage"), join(repo, "src", "s3")].flatMap((dir) => listTs(dir));
    const stale = sources.filter((file) => statSync(file).mtimeMs > built.mtimeMs);
    if (stale.length > 0) throw new Error(`${script} is older than ${stale.join(", ")}: run npx tsc -p tsconfig.build.json first`);
  }
  return script;
}

/** The .ts files of one flat source folder the child is built from. */
function listTs(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"))
    .map((name) => join(dir, name));
}

export interface Generation {
  /** Milliseconds between the child's first START and the SIGKILL. */
  killDelayMs: number;
  lines: number;
  acknowledged: number;
  killedDuring: OpKind | undefined;
  violations: string[];
}

export interface TrialResult {
  seed: string;
  generations: Generation[];
  violations: string[];
  elapsedMs: number;
}

export interface TrialOptions {
  seed: string;
  /** Kill/restart cycles on the same root (each continues from what the previous check observed). */
  generations?: number;
  /** Delay between the first START and the kill, per generation (defaults: 30-400 ms from the seed). */
  killDelayMs?: (generation: number) => number;
  /** Give up on a child that prints no START this long after it was spawned. */
  startTimeoutMs?: number;
}

/** A reproducible number in [0, 1) from a seed and a label. */
export function unit(seed: string, label: string): number {
  return createHash("sha256").update(`${seed}\0${label}`).digest().readUInt32BE(0) / 2 ** 32;
}

export async function runTrial(options: TrialOptions): Promise<TrialResult> {
  const { seed } = options;
  const started = Date.now();
  const script = writerScript();
  const root = await mkdtemp(join(tmpdir(), "store-crash-"));
  const result: TrialResult = { seed, generations: [], violations: [], elapsedMs: 0 };
  try {
    let state: ReadonlyMap<string, KeyState> = new Map();
    for (let g = 0; g < (options.generations ?? 1); g++) {
      const killDelayMs = options.killDelayMs?.(g) ?? Math.round(30 + 370 * unit(seed, `kill ${g}`));
      const run = await runChild(script, root, seed, g * 1_000_000 + 1, killDelayMs, options.startTimeoutMs ?? 15_000);
      const check = await checkCrash(root, seed, run.lines, state);
      const violations = [...run.violations, ...check.violations].map((v) => `seed ${seed} generation ${g} (kill after ${killDelayMs} ms): ${v}`);
      result.generations.push({ killDelayMs, lines: run.lines.length, acknowledged: check.acknowledged, killedDuring: check.killedDuring, violations });
      result.violations.push(...violations);
      state = check.observed;
    }
  } finally {
    await rm(root, { recursive: true, force: true });
    result.elapsedMs = Date.now() - started;
  }
  return result;
}

export interface ChildRun {
  lines: string[];
  violations: string[];
}

/** Runs a writer child (args: root seed firstVersion) until `killDelayMs` after its first START, then SIGKILLs it; returns its log lines. */
export async function runChild(script: string, root: string, seed: string, firstVersion: number, killDelayMs: number, startTimeoutMs: number): Promise<ChildRun> {
  const args = [script, root, seed, String(firstVersion)];
  // With setpriv the kernel kills the child if we die first, so no writer outlives the test.
  const [file, argv] = setpriv ? [setpriv, ["--pdeathsig", "SIGKILL", "--", process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
  const violations: string[] = [];
  let stdout = "";
  let stderr = "";
  let killTimer: NodeJS.Timeout | undefined;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const startTimer = setTimeout(() => {
    violations.push(`the writer printed no START within ${startTimeoutMs} ms`);
    kill();
  }, startTimeoutMs);
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (text: string) => {
    stdout += text;
    if (killTimer === undefined && /^(DEL-)?START /m.test(stdout)) {
      clearTimeout(startTimer);
      killTimer = setTimeout(kill, killDelayMs);
    }
  });
  child.stderr.on("data", (text: string) => (stderr += text));
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (c, s) => resolve([c, s]));
    });
    if (signal !== "SIGKILL") violations.push(`the writer exited by itself (code ${code}, signal ${signal})`);
  } finally {
    clearTimeout(startTimer);
    clearTimeout(killTimer);
    kill();
  }
  if (stderr.trim() !== "") violations.push(`the writer wrote to stderr: ${stderr.trim().slice(0, 2000)}`);
  if (stdout !== "" && !stdout.endsWith("\n")) violations.push(`the log ends with a partial line: ${JSON.stringify(stdout.slice(stdout.lastIndexOf("\n") + 1))}`);
  const lines = stdout.split("\n").filter((l) => l !== "");
  return { lines, violations };
}

export interface TrialsSummary {
  trials: number;
  /** Kill/restart/check cycles (trials × generations). */
  kills: number;
  acknowledged: number;
  /** Kills that landed while a put was in flight (its START printed, its outcome not). */
  killedMidPut: number;
  killedMidDelete: number;
  violations: string[];
  elapsedMs: number;
}

/** Runs `count` trials, `concurrency` at a time; seeds are `${seedPrefix}-${i}`. */
/**
 * Runs `count` trials, then more while `enough` says the evidence gathered is not yet enough (a loaded
 * machine lands fewer kills mid-write), up to `maxCount`: tests ask for evidence, never for a rate.
 */
export async function runTrials(
  count: number,
  options: { concurrency?: number; seedPrefix?: string; generations?: number; onTrial?: (result: TrialResult, index: number) => void; enough?: (summary: TrialsSummary) => boolean; maxCount?: number },
): Promise<TrialsSummary> {
  const started = Date.now();
  const summary: TrialsSummary = { trials: 0, kills: 0, acknowledged: 0, killedMidPut: 0, killedMidDelete: 0, violations: [], elapsedMs: 0 };
  let next = 0;
  const worker = async () => {
    const more = () => next < count || (options.enough !== undefined && !options.enough(summary) && next < (options.maxCount ?? count));
    while (more()) {
      const index = next++;
      const result = await runTrial({ seed: `${options.seedPrefix ?? "crash"}-${index}`, generations: options.generations ?? 1 });
      summary.trials++;
      for (const g of result.generations) {
        summary.kills++;
        summary.acknowledged += g.acknowledged;
        if (g.killedDuring === "put") summary.killedMidPut++;
        if (g.killedDuring === "delete") summary.killedMidDelete++;
      }
      summary.violations.push(...result.violations);
      options.onTrial?.(result, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  summary.elapsedMs = Date.now() - started;
  return summary;
}
