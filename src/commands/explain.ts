import { Option, type Command } from "commander";
import { objectTitle, workloadReport, type Manifest } from "./explainReport.js";
import { renderSummary, renderWorkload } from "./explainText.js";
import { collect } from "./options.js";
import { inputName, loadStateFiles, objectsFromYaml, readInput } from "./stateFiles.js";

interface ExplainOptions {
  file: string;
  state: string[];
  namespace: string;
  output: "text" | "json";
  strict?: boolean;
}

export function registerExplain(program: Command): void {
  program
    .command("explain")
    .description("show what app-snapshots would do to the pods of a manifest (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob), volume by volume")
    .requiredOption("-f, --file <file>", "manifest YAML (- for stdin), e.g. a whole chart from 'helm template ... | app-snapshots explain -f -'")
    .option("--state <file>", "YAML of policies and namespaces; repeatable", collect, [])
    .option("-n, --namespace <name>", "namespace for manifests that name none (helm template output often names none)", "default")
    .addOption(new Option("-o, --output <format>", "text, or json: one report per workload").choices(["text", "json"]).default("text"))
    .option("--strict", "exit 1 when an object in --state is invalid or any workload gets a warning")
    .action((options: ExplainOptions) => {
      let state;
      let manifests: Manifest[];
      try {
        state = loadStateFiles(options.state);
        manifests = objectsFromYaml(readInput(options.file), inputName(options.file)) as Manifest[];
      } catch (err) {
        fail((err as Error).message);
      }
      for (const problem of state.problems) process.stderr.write(`warning: ${problem}\n`);
      if (manifests.length === 0) fail(`no objects in ${inputName(options.file)}`);
      const reports = manifests.flatMap((m) => workloadReport(m, state, options.namespace) ?? []);

      if (options.output === "json") {
        process.stdout.write(`${JSON.stringify({ workloads: reports, stateProblems: state.problems }, null, 2)}\n`);
      } else if (reports.length === 0) {
        // Other kinds pass through app-snapshots untouched; one alone gets a sentence, many a count.
        process.stdout.write(
          manifests.length === 1
            ? `${objectTitle(manifests[0]!, options.namespace)}: not a Pod or a workload with a pod template; app-snapshots does not change it.\n`
            : `none of the ${manifests.length} objects is a Pod or a workload with a pod template; app-snapshots changes none of them.\n`,
        );
      } else {
        const details = reports.map(renderWorkload).join("\n");
        process.stdout.write(reports.length > 1 ? `${details}\n${renderSummary(reports)}` : details);
      }

      const warnings = reports.reduce((n, r) => n + r.warnings.length, 0);
      if (options.strict && (warnings > 0 || state.problems.length > 0)) {
        process.stderr.write(`app-snapshots explain: --strict: ${state.problems.length} invalid object(s) in --state, ${warnings} warning(s)\n`);
        process.exitCode = 1;
      }
    });
}

function fail(message: string): never {
  process.stderr.write(`app-snapshots explain: ${message}\n`);
  process.exit(2);
}
