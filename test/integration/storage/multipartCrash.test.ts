import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runChild, unit, writerScript } from "../../storage/crashTrial.js";
import { checkMultipartCrash } from "../../storage/multipartCheck.js";

const TRIALS = 40;
const GENERATIONS = 3;
/** Evidence, not a rate: a loaded machine lands fewer kills inside Complete, so trials go on until there is enough. */
const MAX_TRIALS = TRIALS * 3;
const enough = (midComplete: number, acknowledged: number) => midComplete >= (TRIALS * GENERATIONS) / 10 && acknowledged > TRIALS;

describe("multipart uploads under SIGKILL", () => {
  it(`${TRIALS} trials of ${GENERATIONS} killed writers: the key holds a whole version or nothing, never a partial assembly`, async () => {
    const script = writerScript("multipartWriter.js");
    const seedPrefix = `mpu-${Date.now().toString(36)}`;
    const violations: string[] = [];
    let kills = 0;
    let midComplete = 0;
    let acknowledged = 0;
    let trial = 0;
    for (; trial < TRIALS || (!enough(midComplete, acknowledged) && trial < MAX_TRIALS); trial++) {
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
    console.log(`multipart crash test (seeds ${seedPrefix}-<n>): ${trial} trials, ${kills} kills, ${midComplete} inside Complete, ${acknowledged} acknowledged uploads, ${violations.length} violations`);
    expect(violations.slice(0, 20)).toEqual([]);
    // The kills must land inside Complete, and uploads be acknowledged, often enough to prove something.
    expect(enough(midComplete, acknowledged), `${midComplete} kills inside Complete, ${acknowledged} acknowledged in ${trial} trials`).toBe(true);
  }, 900_000);
});
