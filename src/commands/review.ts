import type { Command } from "commander";
import { admit } from "../admission/admit.js";
import { parseAdmissionReview } from "../admission/review.js";
import { inputName, loadStateFiles, objectsFromYaml, readInput } from "./stateFiles.js";
import { collect } from "./options.js";

export function registerReview(program: Command): void {
  program
    .command("review")
    .description("print the AdmissionReview response app-snapshots gives for an AdmissionReview (JSON or YAML) on stdin or in a file")
    .option("--state <file>", "YAML of the cluster objects the decision needs (policies, namespaces); repeatable", collect, [])
    .option("--namespace <name>", "the webhook's own namespace (its pods are never mutated)")
    .option("-f, --file <file>", "read the AdmissionReview (JSON or YAML) from this file instead of stdin", "-")
    .action((options: { state: string[]; namespace?: string; file: string }) => {
      let objects: unknown[];
      try {
        // JSON is YAML, so one parser reads what the apiserver sends and what a person writes.
        objects = objectsFromYaml(readInput(options.file), inputName(options.file));
      } catch (err) {
        fail((err as Error).message);
      }
      if (objects.length !== 1) fail(`${inputName(options.file)} holds ${objects.length} objects; give exactly one AdmissionReview`);
      const parsed = parseAdmissionReview(objects[0]);
      if ("error" in parsed) fail(parsed.error);
      let state;
      try {
        state = loadStateFiles(options.state, options.namespace);
      } catch (err) {
        fail((err as Error).message);
      }
      for (const problem of state.problems) process.stderr.write(`warning: ${problem}\n`);
      process.stdout.write(`${JSON.stringify(admit(parsed.review, state), null, 2)}\n`);
    });
}

function fail(message: string): never {
  process.stderr.write(`app-snapshots review: ${message}\n`);
  process.exit(2);
}
