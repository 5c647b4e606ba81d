import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cronProblem } from "../../../src/velero/cron.js";

describe("cron expressions that never fire (robfig/cron dayMatches)", () => {
  it.each([
    ["0 2 31 2 *", "day 31 never occurs in month 2, so it never fires and Velero runs backup after backup"],
    ["0 0 30 2 *", "day 30 never occurs in month 2, so it never fires and Velero runs backup after backup"],
    ["0 0 31 4,6,9,11 *", "day 31 never occurs in month 4,6,9,11, so it never fires and Velero runs backup after backup"],
    ["0 0 30-31 FEB ?", "day 30-31 never occurs in month FEB, so it never fires and Velero runs backup after backup"],
    ["0 0 31 2 */1", "day 31 never occurs in month 2, so it never fires and Velero runs backup after backup"],
  ])("rejects %s", (expression, reason) => {
    expect(cronProblem(expression)).toBe(reason);
  });

  it.each([
    // February 29 comes within the five years robfig's Next searches.
    "0 0 29 2 *",
    // Both day fields restricted: robfig ORs them, so Mondays in February fire.
    "0 0 31 2 MON",
    // A step above 1 clears the star bit (getRange), so the day fields are ORed again.
    "0 0 31 2 */2",
    "0 0 31 1-3 *",
    "0 0 31 * *",
  ])("accepts %s", (expression) => {
    expect(cronProblem(expression)).toBeUndefined();
  });

  it("agrees with a calendar walk over five years on every day-of-month and month combination (day of week *)", () => {
    const dates: Array<[number, number]> = [];
    for (let day = Date.UTC(2024, 0, 1); day < Date.UTC(2029, 0, 1); day += 86_400_000) dates.push([new Date(day).getUTCMonth() + 1, new Date(day).getUTCDate()]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 31 }), { minLength: 1, maxLength: 4 }), fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }), (days, months) => {
        const fires = dates.some(([m, d]) => months.includes(m) && days.includes(d));
        const problem = cronProblem(`0 0 ${days.join(",")} ${months.join(",")} *`);
        expect(problem === undefined).toBe(fires);
      }),
      { numRuns: 500 },
    );
  });
});

describe("CRON_TZ and TZ (robfig loads the zone with Go's time.LoadLocation)", () => {
  it.each(["CRON_TZ=Europe/Berlin 0 3 * * *", "TZ=America/New_York 0 3 * * *", "CRON_TZ=UTC 0 3 * * *", "TZ=Local @daily", "CRON_TZ= 0 3 * * *", "CRON_TZ=US/Eastern 0 3 * * *"])("accepts %s", (expression) => {
    expect(cronProblem(expression)).toBeUndefined();
  });
  it.each([
    ["CRON_TZ=Mars/Olympus 0 3 * * *", '"Mars/Olympus" is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)'],
    ["TZ=europe/berlin 0 3 * * *", 'time zone "europe/berlin" is spelt "Europe/Berlin" (Go\'s time.LoadLocation is case-sensitive)'],
    ["CRON_TZ=Europe/Berlin", '"CRON_TZ=Europe/Berlin" names a time zone but no schedule after it'],
    ["CRON_TZ=UTC 0 3 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"],
  ])("rejects %j", (expression, reason) => {
    expect(cronProblem(expression)).toBe(reason);
  });
});
