import type { Command } from "commander";
import { decidePod } from "../pods/decide.js";
import type { Pod } from "../pods/pod.js";
import { formatWarnings } from "../admission/warnings.js";
import type { ClusterState } from "../admission/state.js";
import { loadStateFiles, objectsFromYaml, readInput } from "./stateFiles.js";

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: Record<string, unknown>;
}

/** The pod a manifest creates: the Pod itself, or a workload's pod template. */
export function podOf(manifest: Manifest): Pod | undefined {
  const fromTemplate = (template: unknown): Pod | undefined => {
    const t = template as { metadata?: Pod["metadata"]; spec?: Pod["spec"] } | undefined;
    return t?.spec ? { apiVersion: "v1", kind: "Pod", metadata: { ...(t.metadata ?? {}) }, spec: t.spec } : undefined;
  };
  switch (manifest.kind) {
    case "Pod":
      return manifest as Pod;
    case "StatefulSet": {
      // The StatefulSet controller adds a PVC volume per volumeClaimTemplate to each pod.
      const pod = fromTemplate(manifest.spec?.template);
      const claims = (manifest.spec?.volumeClaimTemplates as Array<{ metadata?: { name?: string } }> | undefined) ?? [];
      if (pod?.spec) {
        const volumes = [...(pod.spec.volumes ?? [])];
        for (const claim of claims) {
          const name = claim.metadata?.name;
          if (name && !volumes.some((v) => v.name === name)) {
            volumes.push({ name, persistentVolumeClaim: { claimName: `${name}-${manifest.metadata?.name ?? "sts"}-0` } });
          }
        }
        pod.spec = { ...pod.spec, volumes };
      }
      return pod;
    }
    case "Deployment":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
    case "ReplicationController":
      return fromTemplate(manifest.spec?.template);
    case "CronJob":
      return fromTemplate((manifest.spec?.jobTemplate as { spec?: { template?: unknown } } | undefined)?.spec?.template);
    default:
      return undefined;
  }
}

/** A human-readable account of what app-snapshots does to the pod a manifest creates. */
export function explainManifest(manifest: Manifest, state: ClusterState, defaultNamespace: string): string {
  const namespace = manifest.metadata?.namespace ?? defaultNamespace;
  const title = `${manifest.kind ?? "object"} ${namespace}/${manifest.metadata?.name ?? "(unnamed)"}`;
  const pod = podOf(manifest);
  if (!pod) return `${title}: not a Pod or a workload with a pod template; app-snapshots does not change it.\n`;
  const decision = decidePod(pod, namespace, state);
  const lines = [`${title}${manifest.kind === "Pod" ? "" : " (pod template)"}`];
  if (decision.skipped) return `${lines[0]}\n  skipped: ${decision.skipped}; app-snapshots leaves it unchanged.\n`;
  lines.push(`  policy: ${decision.policy ?? "none matches (no annotations added)"}`);
  const before = pod.metadata?.annotations ?? {};
  const after = decision.pod.metadata?.annotations ?? {};
  const changed = Object.entries(after).filter(([k, v]) => before[k] !== v);
  const kept = Object.entries(before).filter(([k]) => /velero\.io\//.test(k) && after[k] === before[k]);
  if (changed.length > 0) {
    lines.push("  annotations set:");
    for (const [k, v] of changed) lines.push(`    ${k}: ${v}${before[k] !== undefined ? `   (was: ${before[k]})` : ""}`);
  } else {
    lines.push("  annotations set: none");
  }
  if (kept.length > 0) {
    lines.push("  Velero annotations kept as written:");
    for (const [k, v] of kept) lines.push(`    ${k}: ${v}`);
  }
  const initBefore = (pod.spec?.initContainers ?? []).map((c) => c.name).join(", ");
  const initAfter = (decision.pod.spec?.initContainers ?? []).map((c) => c.name).join(", ");
  if (JSON.stringify(pod.spec?.initContainers) !== JSON.stringify(decision.pod.spec?.initContainers)) {
    lines.push(`  init containers: ${initBefore} -> ${initAfter}`);
  }
  if (decision.warnings.length > 0) {
    lines.push("  warnings:");
    for (const w of formatWarnings(decision.warnings)) lines.push(`    - ${w}`);
  }
  return `${lines.join("\n")}\n`;
}

export function registerExplain(program: Command): void {
  program
    .command("explain")
    .description("show what app-snapshots would do to the pods of a manifest (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob)")
    .requiredOption("-f, --file <file>", "manifest YAML (- for stdin); several documents are explained one by one")
    .option("--state <file>", "YAML of policies and namespaces; repeatable", (v: string, p: string[]) => [...p, v], [])
    .option("-n, --namespace <name>", "namespace for manifests that name none", "default")
    .action((options: { file: string; state: string[]; namespace: string }) => {
      try {
        const state = loadStateFiles(options.state);
        for (const problem of state.problems) process.stderr.write(`warning: ${problem}\n`);
        const manifests = objectsFromYaml(readInput(options.file), options.file) as Manifest[];
        process.stdout.write(manifests.map((m) => explainManifest(m, state, options.namespace)).join("\n"));
      } catch (err) {
        process.stderr.write(`app-snapshots explain: ${(err as Error).message}\n`);
        process.exit(2);
      }
    });
}
