/**
 * Go's time.ParseDuration, which Velero uses for every hook timeout: a sequence of decimal numbers
 * with units ns, us (or µs/μs), ms, s, m, h, optionally signed; "0" alone is valid.
 */
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const PART = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** Nanoseconds, or undefined when Go would reject the text. */
export function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < rest.length) {
    const match = PART.exec(rest);
    if (!match) return undefined;
    const [, number, unit] = match;
    if (number === "" || number === ".") return undefined;
    total += Number(number) * UNIT_NS[unit!]!;
  }
  return sign * total;
}

export function isGoDuration(text: string): boolean {
  return parseGoDuration(text) !== undefined;
}

/** The same rule as a JSON-schema pattern, for the CRDs (kept next to the parser it mirrors). */
export const GO_DURATION_PATTERN = "^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";
