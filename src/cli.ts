#!/usr/bin/env node
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";

type Register = (program: Command) => void;

/**
 * Each command's module, imported only when needed: the server commands pull in express, pino,
 * prom-client and the storage and S3 code (about half a second), the Kubernetes client loads in the
 * commands that talk to a cluster (src/kube/loadConfig.ts), and `review` and `explain` need neither.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  certs: async () => (await import("./commands/certs.js")).registerCerts,
  crds: async () => (await import("./commands/crds.js")).registerCrds,
  explain: async () => (await import("./commands/explain.js")).registerExplain,
  review: async () => (await import("./commands/review.js")).registerReview,
  storage: async () => (await import("./commands/storage.js")).registerStorage,
  webhook: async () => (await import("./commands/webhook.js")).registerWebhook,
};

/**
 * The commands a command line needs: the one it names, or all of them (help, --version, a typo, or
 * no arguments). The program's own options (-h, -V) take no value, so the command is the first
 * argument that is not an option.
 */
export function commandsFor(args: readonly string[]): string[] {
  const named = args.find((arg) => !arg.startsWith("-"));
  return named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
}

/** package.json sits two levels above the built file (dist/src/cli.js) and one above the source. */
function packageVersion(): string {
  for (const candidate of ["../../package.json", "../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "app-snapshots" && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return "0.0.0-unknown";
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
// Run as the CLI, only the named command's module loads; imported (local-volume-fileserver, tests), all do.
const registers = await Promise.all(commandsFor(invokedDirectly ? process.argv.slice(2) : []).map((name) => COMMANDS[name]!()));

export function buildProgram(): Command {
  const program = new Command("app-snapshots")
    .description(
      "Makes Kubernetes applications back up and restore correctly with Velero:\n" +
        "pod admission (volume and hook annotations), Velero admission (validation), and backup storage.",
    )
    .version(packageVersion(), "-V, --version", "print the version and exit")
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  for (const register of registers) register(program);
  return program;
}

if (invokedDirectly) {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    // A usage or configuration problem: one line an admin can act on, not a stack trace (LOG_LEVEL=debug shows it).
    process.stderr.write(`app-snapshots: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.LOG_LEVEL === "debug" && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
