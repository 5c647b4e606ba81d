import type { Command } from "commander";
import { policyCrdsYaml } from "../policy/crd.js";

export function registerCrds(program: Command): void {
  program
    .command("crds")
    .description("print the SnapshotPolicy and ClusterSnapshotPolicy CRDs (for kubectl apply -f -)")
    .action(() => {
      process.stdout.write(policyCrdsYaml());
    });
}
