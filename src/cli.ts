#!/usr/bin/env node
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { registerCerts } from "./commands/certs.js";
import { registerCrds } from "./commands/crds.js";
import { registerExplain } from "./commands/explain.js";
import { registerReview } from "./commands/review.js";
import { registerStorage } from "./commands/storage.js";
import { registerWebhook } from "./commands/webhook.js";

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

export function buildProgram(): Command {
  const program = new Command("app-snapshots")
    .description(
      "Makes Kubernetes applications back up and restore correctly with Velero:\n" +
        "pod admission (volume and hook annotations), Velero admission (validation), and backup storage.",
    )
    .version(packageVersion(), "-V, --version", "print the version and exit")
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerWebhook(program);
  registerReview(program);
  registerExplain(program);
  registerCrds(program);
  registerCerts(program);
  registerStorage(program);
  return program;
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
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
