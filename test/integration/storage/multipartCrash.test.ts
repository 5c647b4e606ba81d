import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runChild, unit, writerScript } from "../../storage/crashTrial.js";
import { checkMultipartCrash } from "../../storage/multipartCheck.js";

const TRIALS = 40;
const GENERATIONS = 3;

describe("multipart uploads under SIGKILL", () => {
  it(`${TRIALS} trials of ${GENERATIONS} killed writers: the key holds a whole version or nothing, never a partial assembly`, async () => {
    const script = writerScript("multipartWriter.js");
    const seedPrefix = `mpu-${Date.now().toString(36)}`;
    const violations: string[] = [];
    let kills = 0;
    let midComplete = 0;
    let acknowledged = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const seed = `${seedPrefix}-${trial}`;
      const root = await mkdtemp(join(tmpdir(), "mpu-crash-"));
      let prior: { lastAcked: number | null; stored: number | null } = { lastAcked: null, stored: null };
      try {
        for (let g = 0; g < GENERATIONS; g++) {
          const killDelayMs = Math.round(10 + 190 * unit(seed, `kill ${g}`));
          const run = await runChild(script, root, seed, g * 1_000_000 + 1, killDelayMs, 15_000);
          kills++;
          const last = run.lines.at(-1) ?? "";
          if (last.startsWith("COMPLETE ")) midComplete++;
          acknowledged += run.lines.filter((l) => l.startsWith("ACK ")).length;
          const check = await checkMultipartCrash(root, seed, run.lines, prior);
          prior = { lastAcked: check.lastAcked, stored: check.stored };
          violations.push(...[...run.violations, ...check.violations].map((v) => `seed ${seed} generation ${g} (kill after ${killDelayMs} ms): ${v}`));
        }
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    }
    console.log(`multipart crash test (seeds ${seedPrefix}-<n>): ${kills} kills, ${midComplete} inside Complete, ${acknowledged} acknowledged uploads, ${violations.length} violations`);
    expect(violations.slice(0, 20)).toEqual([]);
    // The kills must land inside Complete often enough to prove something.
    expect(midComplete).toBeGreaterThan(kills / 10);
    expect(acknowledged).toBeGreaterThan(TRIALS);
  }, 300_000);
});
