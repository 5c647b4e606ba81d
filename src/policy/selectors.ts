import type { LabelSelector } from "./types.js";

/** Kubernetes LabelSelector semantics: an omitted or empty selector matches everything. */
export function matchesSelector(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (have[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, expression.key);
    const values = expression.values ?? [];
    switch (expression.operator) {
      case "In":
        if (!present || !values.includes(have[expression.key]!)) return false;
        break;
      case "NotIn":
        if (present && values.includes(have[expression.key]!)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
    }
  }
  return true;
}

const compiled = new Map<string, RegExp>();

/** Shell-style glob on volume names: `*` any run, `?` one character; everything else literal. */
export function globMatches(pattern: string, name: string): boolean {
  return globRegex(pattern).test(name);
}

/** Patterns come from a few policies; each is compiled once, not once per pod volume. */
function globRegex(pattern: string): RegExp {
  const cached = compiled.get(pattern);
  if (cached) return cached;
  if (compiled.size > 10_000) compiled.clear();
  const regex = new RegExp(
    "^" +
      [...pattern]
        .map((ch) => (ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
        .join("") +
      "$",
    "s",
  );
  compiled.set(pattern, regex);
  return regex;
}
