import { parseGoDuration } from "./duration.js";

/**
 * Velero parses Schedule.spec.schedule with robfig/cron's standard parser: five fields (minute,
 * hour, day of month, month, day of week), optional CRON_TZ=/TZ= prefix, or a descriptor
 * (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>).
 * Returns why the expression is invalid, or undefined.
 */
const FIELDS: Array<{ name: string; min: number; max: number; names?: string[] }> = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
  { name: "day of week", min: 0, max: 6, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];
const DESCRIPTORS = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);

function value(text: string, field: (typeof FIELDS)[number]): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return index >= 0 ? index + field.min : undefined;
}

function checkField(text: string, field: (typeof FIELDS)[number]): string | undefined {
  for (const part of text.split(",")) {
    const [range, step, extra] = part.split("/");
    if (extra !== undefined || range === undefined || range === "") return `${field.name} "${text}" is malformed`;
    if (step !== undefined && !/^[1-9]\d*$/.test(step)) return `${field.name} step "${step}" must be a positive number`;
    if (range === "*" || range === "?") continue;
    const bounds = range.split("-");
    if (bounds.length > 2) return `${field.name} range "${range}" is malformed`;
    const numbers = bounds.map((b) => value(b, field));
    if (numbers.some((n) => n === undefined)) return `${field.name} "${range}" is not a number${field.names ? " or name" : ""}`;
    for (const n of numbers as number[]) if (n < field.min || n > field.max) return `${field.name} ${n} is outside ${field.min}-${field.max}`;
    if (numbers.length === 2 && numbers[0]! > numbers[1]!) return `${field.name} range "${range}" runs backwards`;
  }
  return undefined;
}

export function cronProblem(expression: string): string | undefined {
  let spec = expression.trim();
  const tz = /^(CRON_TZ|TZ)=\S+\s+/.exec(spec);
  if (tz) spec = spec.slice(tz[0].length);
  if (spec === "") return "the schedule is empty";
  if (spec.startsWith("@every ")) {
    const ns = parseGoDuration(spec.slice(7).trim());
    return ns !== undefined && ns > 0 ? undefined : `"${spec}" needs a positive Go duration after @every (e.g. @every 6h)`;
  }
  if (spec.startsWith("@")) return DESCRIPTORS.has(spec) ? undefined : `"${spec}" is not a descriptor Velero knows (${[...DESCRIPTORS].join(", ")}, @every <duration>)`;
  const fields = spec.split(/\s+/);
  if (fields.length !== 5) return `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`;
  for (let i = 0; i < 5; i++) {
    const problem = checkField(fields[i]!, FIELDS[i]!);
    if (problem) return problem;
  }
  return undefined;
}
