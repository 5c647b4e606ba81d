import { parseGoDuration } from "./duration.js";

/**
 * Velero parses Schedule.spec.schedule with robfig/cron v3's ParseStandard
 * (pkg/controller/schedule_controller.go, parseCronSchedule): an optional CRON_TZ=<zone> or TZ=<zone>
 * prefix, then five fields (minute, hour, day of month, month, day of week) or a descriptor
 * (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>).
 * The rules below follow robfig/cron v3.0.1 parser.go (Parse, getRange) and spec.go (Next, dayMatches).
 */
interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
}
const FIELDS: Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
  { name: "day of week", min: 0, max: 6, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];
const DESCRIPTORS = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);
/** The most days each month has (February: 29, which Next reaches within its five-year search). */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The values a field matches, and whether robfig marks it "star" ("*" or "?" without a step above 1). */
interface ParsedField {
  values: Set<number>;
  star: boolean;
}

function value(text: string, field: Field): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return index >= 0 ? index + field.min : undefined;
}

function parseField(text: string, field: Field): ParsedField | string {
  const parsed: ParsedField = { values: new Set(), star: false };
  for (const part of text.split(",")) {
    const [range, stepText, extra] = part.split("/");
    if (extra !== undefined || range === undefined || range === "") return `${field.name} "${text}" is malformed`;
    if (stepText !== undefined && !/^[1-9]\d*$/.test(stepText)) return `${field.name} step "${stepText}" must be a positive number`;
    const step = stepText === undefined ? 1 : Number(stepText);
    let start: number;
    let end: number;
    if (range === "*" || range === "?") {
      [start, end] = [field.min, field.max];
      // getRange: a step above 1 clears the star bit.
      if (step === 1) parsed.star = true;
    } else {
      const bounds = range.split("-");
      if (bounds.length > 2) return `${field.name} range "${range}" is malformed`;
      const numbers = bounds.map((b) => value(b, field));
      if (numbers.some((n) => n === undefined)) return `${field.name} "${range}" is not a number${field.names ? " or name" : ""}`;
      for (const n of numbers as number[]) if (n < field.min || n > field.max) return `${field.name} ${n} is outside ${field.min}-${field.max}`;
      start = numbers[0]!;
      // getRange: "N/step" means "N-max/step".
      end = numbers.length === 2 ? numbers[1]! : stepText !== undefined ? field.max : start;
      if (start > end) return `${field.name} range "${range}" runs backwards`;
    }
    for (let n = start; n <= end; n += step) parsed.values.add(n);
  }
  return parsed;
}

/**
 * Does the schedule ever fire? robfig's dayMatches requires both day fields when either is "*"
 * (or "?"), and either of them otherwise; so only a day of month that no chosen month has, with a
 * day of week of "*", never matches (0 2 31 2 *). Next then returns the zero time, which Velero's
 * getNextRunTime takes as long past: the Schedule is due at every check and starts backup after backup.
 */
function neverFires(dom: ParsedField, month: ParsedField, dow: ParsedField): boolean {
  if (dom.star || !dow.star) return false;
  return [...month.values].every((m) => [...dom.values].every((d) => d > DAYS_IN_MONTH[m - 1]!));
}

let zones: Set<string> | undefined;
/**
 * robfig loads the zone with Go's time.LoadLocation: "" and "UTC" are UTC, "Local" the server's zone,
 * anything else an IANA name from the image's tzdata, spelt exactly (the lookup is a file path, so
 * case matters). Node knows the canonical IANA names; an alias it also accepts (US/Eastern) passes.
 */
function zoneProblem(zone: string): string | undefined {
  if (zone === "" || zone === "UTC" || zone === "Local") return undefined;
  zones ??= new Set(Intl.supportedValuesOf("timeZone"));
  if (zones.has(zone)) return undefined;
  const sameIgnoringCase = [...zones].find((z) => z.toLowerCase() === zone.toLowerCase());
  if (sameIgnoringCase) return `time zone "${zone}" is spelt "${sameIgnoringCase}" (Go's time.LoadLocation is case-sensitive)`;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return undefined;
  } catch {
    return `"${zone}" is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)`;
  }
}

/** Why Velero would refuse or misread the expression, or undefined. */
export function cronProblem(expression: string): string | undefined {
  let spec = expression;
  // Parse: the prefix is recognised only at the very start; the zone runs to the first space.
  if (spec.startsWith("TZ=") || spec.startsWith("CRON_TZ=")) {
    const space = spec.indexOf(" ");
    if (space < 0) return `"${spec}" names a time zone but no schedule after it`;
    const problem = zoneProblem(spec.slice(spec.indexOf("=") + 1, space));
    if (problem) return problem;
    spec = spec.slice(space).trim();
  }
  if (spec.trim() === "") return "the schedule is empty";
  if (spec.startsWith("@every ")) {
    const ns = parseGoDuration(spec.slice(7).trim());
    return ns !== undefined && ns > 0 ? undefined : `"${spec}" needs a positive Go duration after @every (e.g. @every 6h)`;
  }
  if (spec.startsWith("@")) return DESCRIPTORS.has(spec) ? undefined : `"${spec}" is not a descriptor Velero knows (${[...DESCRIPTORS].join(", ")}, @every <duration>)`;
  const texts = spec.trim().split(/\s+/);
  if (texts.length !== 5) return `expected 5 fields (minute hour day-of-month month day-of-week), got ${texts.length}`;
  const fields: ParsedField[] = [];
  for (let i = 0; i < 5; i++) {
    const parsed = parseField(texts[i]!, FIELDS[i]!);
    if (typeof parsed === "string") return parsed;
    fields.push(parsed);
  }
  const [, , dom, month, dow] = fields as [ParsedField, ParsedField, ParsedField, ParsedField, ParsedField];
  if (neverFires(dom, month, dow)) {
    return `day ${texts[2]} never occurs in month ${texts[3]}, so it never fires and Velero runs backup after backup`;
  }
  return undefined;
}
