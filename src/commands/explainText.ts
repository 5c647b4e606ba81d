import type { ModeVerdict, VolumeVerdict } from "../pods/volumeVerdict.js";
import type { WorkloadReport } from "./explainReport.js";
import { formatTable } from "./explainTable.js";

const word = (v: ModeVerdict) => (v.backedUp ? "selected" : "skipped");
const sourceOf = (v: VolumeVerdict) => (v.claimName !== undefined ? `claim ${v.claimName}` : v.source);

/** One workload in words: policy, annotation changes, init containers, a verdict per volume, warnings. */
export function renderWorkload(report: WorkloadReport): string {
  const title = `${report.kind} ${report.namespace}/${report.name}${report.kind === "Pod" ? "" : " (pod template)"}`;
  const lines = [title];
  if (report.skipped !== null) {
    lines.push(`  skipped: ${report.skipped}; app-snapshots leaves it unchanged.`);
  } else {
    lines.push(`  policy: ${report.policy ?? "none matches (no annotations added)"}`);
    if (report.annotationsSet.length === 0) lines.push("  annotations set: none");
    else {
      lines.push("  annotations set:");
      for (const { key, value, was } of report.annotationsSet) lines.push(`    ${key}: ${value}${was !== undefined ? `   (was: ${was})` : ""}`);
    }
    if (report.annotationsRemoved.length > 0) lines.push(`  annotations removed: ${report.annotationsRemoved.join(", ")}`);
    const kept = Object.entries(report.annotationsKept);
    if (kept.length > 0) {
      lines.push("  Velero annotations kept as written:");
      for (const [key, value] of kept) lines.push(`    ${key}: ${value}`);
    }
    const init = report.initContainers;
    if (init.changed.length > 0 || init.before.join() !== init.after.join()) {
      const changed = init.changed.length > 0 ? ` (added or changed: ${init.changed.join(", ")})` : "";
      lines.push(`  init containers: ${init.before.join(", ") || "none"} -> ${init.after.join(", ") || "none"}${changed}`);
    }
  }
  if (report.volumes.length > 0) {
    // Verdicts side by side, then the reasons (too long for table cells) one per line.
    lines.push(`  volumes (Velero file-system backup; opt-in is Velero's default, opt-out is defaultVolumesToFsBackup: true):`);
    const verdicts = report.volumes.map((v) => [v.name, sourceOf(v), word(v.optIn), word(v.optOut)]);
    lines.push(...formatTable([["VOLUME", "SOURCE", "OPT-IN", "OPT-OUT"], ...verdicts], "    "));
    lines.push("  why:");
    const reasons = report.volumes.flatMap((v) =>
      v.optIn.reason === v.optOut.reason
        ? [[v.name, "both:", v.optIn.reason]]
        : [
            [v.name, "opt-in:", v.optIn.reason],
            ["", "opt-out:", v.optOut.reason],
          ],
    );
    lines.push(...formatTable(reasons, "    "));
  }
  if (report.warnings.length > 0) {
    // In full: the webhook shortens them only to fit the apiserver's Warning headers.
    lines.push("  warnings:");
    for (const w of report.warnings) lines.push(`    - ${w}`);
  }
  return `${lines.join("\n")}\n`;
}

/** One line per workload, for a whole chart's output. */
export function renderSummary(reports: readonly WorkloadReport[]): string {
  const backedUp = (r: WorkloadReport, mode: "optIn" | "optOut") => r.volumes.filter((v) => v[mode].backedUp).map((v) => v.name).join(", ") || "none";
  const rows = reports.map((r) => [
    `${r.kind} ${r.namespace}/${r.name}`,
    r.skipped !== null ? `skipped (${r.skipped})` : (r.policy ?? "none"),
    backedUp(r, "optIn"),
    backedUp(r, "optOut"),
    String(r.warnings.length),
  ]);
  const header = ["WORKLOAD", "POLICY", "BACKED UP: OPT-IN", "BACKED UP: OPT-OUT", "WARNINGS"];
  return `summary: ${reports.length} workloads\n${formatTable([header, ...rows], "  ").join("\n")}\n`;
}
