import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatHookCommand, parseGoBool, parseHookCommand, splitVolumeList } from "../../../src/velero/annotations.js";
import { GO_DURATION_PATTERN, parseGoDuration } from "../../../src/velero/duration.js";

describe("Go durations (time.ParseDuration)", () => {
  it.each([
    ["30s", 30e9],
    ["5m", 300e9],
    ["1h30m", 5400e9],
    ["1.5h", 5400e9],
    ["0", 0],
    ["-2s", -2e9],
    ["100ms", 1e8],
    ["10us", 1e4],
    ["10µs", 1e4],
    [".5s", 5e8],
  ])("accepts %s", (text, ns) => {
    expect(parseGoDuration(text)).toBe(ns);
  });

  it.each(["", "30", "5 minutes", "1d", "s", "1h 30m", "1.h.", "--1s", "10S", "0s0"])("rejects %j", (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });

  it("agrees with the CRD pattern on generated strings", () => {
    const pattern = new RegExp(GO_DURATION_PATTERN, "u");
    const piece = fc.tuple(fc.oneof(fc.nat({ max: 999 }).map(String), fc.constantFrom("1.5", ".5", "2.")), fc.constantFrom("ns", "us", "µs", "ms", "s", "m", "h", "d", ""));
    const text = fc.oneof(
      fc.array(piece, { minLength: 1, maxLength: 3 }).map((parts) => parts.map(([n, u]) => n + u).join("")),
      fc.string({ maxLength: 8 }),
    );
    fc.assert(fc.property(text, (t) => (parseGoDuration(t) !== undefined) === pattern.test(t)));
  });
});

describe("hook commands (parseStringToCommand)", () => {
  it("decodes a JSON array", () => {
    expect(parseHookCommand('["/bin/sh","-c","echo hi"]')).toEqual({ argv: ["/bin/sh", "-c", "echo hi"], decodedAsJson: true });
  });
  it("keeps a shell string as ONE argv element", () => {
    expect(parseHookCommand("/bin/sh -c 'echo hi'")).toEqual({ argv: ["/bin/sh -c 'echo hi'"], decodedAsJson: false });
  });
  it("falls back to one element for single-quoted JSON", () => {
    expect(parseHookCommand("['a','b']")).toEqual({ argv: ["['a','b']"], decodedAsJson: false });
  });
  it("round-trips any argv through formatHookCommand", () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1 }), (argv) => {
        expect(parseHookCommand(formatHookCommand(argv)).argv).toEqual(argv);
      }),
    );
  });
});

describe("volume lists and booleans", () => {
  it("splits like Velero: no trimming, empties kept", () => {
    expect(splitVolumeList("a, b,,c")).toEqual(["a", " b", "", "c"]);
  });
  it("parses booleans like strconv.ParseBool", () => {
    expect(["1", "t", "TRUE", "True"].map(parseGoBool)).toEqual([true, true, true, true]);
    expect(["0", "F", "false"].map(parseGoBool)).toEqual([false, false, false]);
    expect(["yes", "", "tRuE"].map(parseGoBool)).toEqual([undefined, undefined, undefined]);
  });
});
