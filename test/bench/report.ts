import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../cluster/binaries.js";

const FILE = path.join(repoRoot, "docs", "benchmarks.md");
const HEADER = `# Benchmarks

Written by \`make bench\`; every figure is a ratio against a baseline measured in the same run on the same
machine. Sections are replaced one at a time, so each shows the date and machine of its own run.
`;

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

/** Replaces (or appends) the section between `<!-- bench:NAME -->` markers in docs/benchmarks.md. */
export function writeSection(name: string, markdown: string): void {
  mkdirSync(path.dirname(FILE), { recursive: true });
  const current = existsSync(FILE) ? readFileSync(FILE, "utf8") : HEADER;
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const pattern = new RegExp(`${start}[\\s\\S]*?${end}`);
  writeFileSync(FILE, pattern.test(current) ? current.replace(pattern, block) : `${current.trimEnd()}\n\n${block}\n`);
}

export const ratio = (ours: number, base: number) => (base > 0 ? (ours / base).toFixed(2) : "n/a");

/** One line of a benchmark table: our figure, its baseline, the ratio and the goal it is held to. */
export interface Row {
  figure: string;
  ours: string;
  baseline: string;
  ratio: string;
  goal: string;
  met: boolean | undefined;
}

/** A benchmark's section: heading, the description lines, the table of rows, and the notes. */
export function renderSection(heading: string, description: string[], rows: Row[], notes: string[]): string {
  return [
    heading,
    "",
    ...description,
    "",
    "| figure | ours | baseline | ratio | goal | met? |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.figure} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${r.met === undefined ? "" : r.met ? "yes" : "**no**"} |`),
    "",
    ...notes.map((n) => `* ${n}`),
  ].join("\n");
}
