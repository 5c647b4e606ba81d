import fc from "fast-check";

type Json = unknown;

const DEEP = "\u0001deep:";

/** The document as JSON text, each deep-nesting marker replaced by that many nested arrays. */
export function serialize(document: Json): string {
  return (JSON.stringify(document) ?? "").replace(/"\\u0001deep:(\d+)"/g, (_m, depth: string) => `${"[".repeat(Number(depth))}${"]".repeat(Number(depth))}`);
}

/** Every path to a value inside `value` (the root is []). */
function paths(value: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

/** Values that break assumptions: wrong types, huge and odd strings, deep nesting, prototype names. */
const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, 0, -1, 1e308, "", " ", "__proto__", "constructor", "x".repeat(100_000), "\u0000", "\ud800", "../../etc", "a,b,,c", "[\"sync\"]", "30s", "-1s", "999999h"),
  // Deep nesting stays a marker until serialize(): fast-check prints counterexamples recursively.
  fc.constantFrom(10, 1000, 5000, 100_000).map((depth) => `${DEEP}${depth}`),
  fc.constantFrom({}, [], { __proto__: { polluted: true } }, { constructor: { prototype: { x: 1 } } }),
);

type JsonMutation = { at: number; kind: "replace"; value: Json } | { at: number; kind: "delete" } | { at: number; kind: "wrap" } | { at: number; kind: "stringify" };

const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  fc.record({ at: fc.nat(), kind: fc.constant("replace" as const), value: hostileValue }),
  fc.record({ at: fc.nat(), kind: fc.constant("delete" as const) }),
  fc.record({ at: fc.nat(), kind: fc.constant("wrap" as const) }),
  fc.record({ at: fc.nat(), kind: fc.constant("stringify" as const) }),
);

/** One to five structural mutations of a JSON document (positions taken modulo its number of values). */
export const jsonMutations = fc.array(jsonMutation, { minLength: 1, maxLength: 5 });

export function applyJsonMutations(document: Json, list: readonly JsonMutation[]): Json {
  let root = structuredClone(document);
  for (const m of list) {
    const all = paths(root);
    const path = all[m.at % all.length]!;
    const old = path.reduce<Json>((node, k) => (node as Record<string | number, Json>)[k], root);
    const next = m.kind === "replace" ? m.value : m.kind === "wrap" ? [old] : m.kind === "stringify" ? JSON.stringify(old) ?? "" : undefined;
    if (path.length === 0) {
      root = next ?? null;
      continue;
    }
    const parent = path.slice(0, -1).reduce<Json>((node, k) => (node as Record<string | number, Json>)[k], root) as Record<string | number, Json>;
    const last = path[path.length - 1]!;
    if (next === undefined) {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
    } else parent[last] = next;
  }
  return root;
}
