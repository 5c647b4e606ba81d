import { describe, expect, it } from "vitest";
import { buildProgram, commandsFor } from "../../../src/cli.js";

const ALL = ["certs", "crds", "explain", "review", "storage", "webhook"];

describe("commandsFor: the command modules a command line loads", () => {
  it.each([
    [["explain", "-f", "x.yaml"], ["explain"]],
    [["review", "--state", "webhook"], ["review"]],
    [["storage", "sign", "s3://b/k"], ["storage"]],
    [["--help"], ALL],
    [["help", "explain"], ALL],
    [["-V"], ALL],
    [["no-such-command"], ALL],
    [["constructor"], ALL],
    [[], ALL],
  ])("%j loads %j", (args, expected) => {
    expect(commandsFor(args)).toEqual(expected);
  });

  it("an imported program (local-volume-fileserver, tests) has every command", () => {
    expect(buildProgram().commands.map((c) => c.name()).sort()).toEqual(ALL);
  });
});
