import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCredentials } from "../../../src/s3/credentials.js";

const pairsOf = (text: string) => [...parseCredentials(text)];

describe("parseCredentials", () => {
  it("reads the default profile of an AWS shared-credentials file", () => {
    const text = "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";
    expect(pairsOf(text)).toEqual([["AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"]]);
  });

  it("reads every profile that has both keys, in file order", () => {
    const text = [
      "[default]",
      "aws_access_key_id=AKIAONE",
      "aws_secret_access_key=secret-one-1234",
      "",
      "[profile backup]",
      "region = eu-west-1",
      "aws_access_key_id   =   AKIATWO  ",
      "aws_secret_access_key\t=\tsecret two with spaces",
      "[ spaced ]",
      "aws_access_key_id = AKIATHREE",
      "aws_secret_access_key = s3cr3t=with=equals",
    ].join("\n");
    expect(pairsOf(text)).toEqual([
      ["AKIAONE", "secret-one-1234"],
      ["AKIATWO", "secret two with spaces"],
      ["AKIATHREE", "s3cr3t=with=equals"],
    ]);
  });

  it("ignores # and ; comment lines, blank lines, indentation and other settings", () => {
    const text = [
      "# Velero BSL credentials",
      "; written by hand",
      "   ",
      "  [default]  ",
      "  # aws_access_key_id = AKIACOMMENTED",
      "  aws_access_key_id = AKIAREAL",
      "aws_session_token = ignored",
      "region = us-east-1",
      "  aws_secret_access_key = real-secret-key",
      "[only-settings]",
      "region = eu-central-1",
      "output = json",
    ].join("\n");
    expect(pairsOf(text)).toEqual([["AKIAREAL", "real-secret-key"]]);
  });

  it("accepts CRLF line endings (a Secret written on Windows) and a byte-order mark", () => {
    const text = "\uFEFF[default]\r\naws_access_key_id = AKIACRLF\r\naws_secret_access_key = crlf-secret-key\r\n\r\n";
    expect(pairsOf(text)).toEqual([["AKIACRLF", "crlf-secret-key"]]);
  });

  it("matches setting names case-insensitively", () => {
    const text = "[default]\nAWS_ACCESS_KEY_ID = AKIAUPPER\nAws_Secret_Access_Key = upper-secret-key\n";
    expect(pairsOf(text)).toEqual([["AKIAUPPER", "upper-secret-key"]]);
  });

  it("lets a later value of a setting in the same profile win", () => {
    const text = "[default]\naws_access_key_id = AKIAFIRST\naws_access_key_id = AKIASECOND\naws_secret_access_key = some-secret-key\n";
    expect(pairsOf(text)).toEqual([["AKIASECOND", "some-secret-key"]]);
  });

  it("accepts the same access key twice with the same secret", () => {
    const text = "[a]\naws_access_key_id = AKIASAME\naws_secret_access_key = same-secret\n[b]\naws_access_key_id = AKIASAME\naws_secret_access_key = same-secret\n";
    expect(pairsOf(text)).toEqual([["AKIASAME", "same-secret"]]);
  });

  it("refuses the same access key with different secrets", () => {
    const text = "[a]\naws_access_key_id = AKIASAME\naws_secret_access_key = first-secret\n[b]\naws_access_key_id = AKIASAME\naws_secret_access_key = second-secret\n";
    expect(() => parseCredentials(text)).toThrow(new Error("access key AKIASAME appears twice with different secrets"));
  });

  it("refuses a profile with only one half of a pair, naming the profile and its line", () => {
    expect(() => parseCredentials("[default]\naws_access_key_id = AKIAHALF\n")).toThrow(
      new Error("profile [default] (line 1) needs both aws_access_key_id and aws_secret_access_key"),
    );
    expect(() => parseCredentials("# c\n\n[ok]\naws_access_key_id = AKIAOK\naws_secret_access_key = ok-secret-key\n[half]\naws_secret_access_key = lonely-secret\n")).toThrow(
      new Error("profile [half] (line 6) needs both aws_access_key_id and aws_secret_access_key"),
    );
    expect(() => parseCredentials("[default]\naws_access_key_id =\naws_secret_access_key = a-secret-key\n")).toThrow(
      new Error("profile [default] (line 1) needs both aws_access_key_id and aws_secret_access_key"),
    );
  });

  it("refuses a file without any pair", () => {
    const message = new Error("no profile has aws_access_key_id and aws_secret_access_key");
    expect(() => parseCredentials("")).toThrow(message);
    expect(() => parseCredentials("# only a comment\n")).toThrow(message);
    expect(() => parseCredentials("[default]\nregion = us-east-1\n")).toThrow(message);
    expect(() => parseCredentials("[default]\naws_access_key_id =\naws_secret_access_key =\n")).toThrow(message);
  });

  it("refuses lines that are neither settings nor profile headers, with their line number", () => {
    expect(() => parseCredentials("[default]\naws_access_key_id = AKIA\nnot a setting\n")).toThrow(new Error('line 3: expected "name = value" or "[profile]"'));
    expect(() => parseCredentials("[default]\r\n\r\n= value\r\n")).toThrow(new Error('line 3: expected "name = value" or "[profile]"'));
    expect(() => parseCredentials("[]\n")).toThrow(new Error('line 1: expected "name = value" or "[profile]"'));
    expect(() => parseCredentials("[default\naws_access_key_id = AKIA\n")).toThrow(new Error('line 1: expected "name = value" or "[profile]"'));
  });

  it("refuses a setting before the first profile header, with its line number", () => {
    expect(() => parseCredentials("# header comment\naws_access_key_id = AKIA\n[default]\n")).toThrow(new Error("line 2: a setting before the first [profile] header"));
  });

  it("refuses access key ids that cannot appear in a credential scope", () => {
    const bad = (id: string) => `[p]\naws_access_key_id = ${id}\naws_secret_access_key = long-enough-secret\n`;
    const message = new Error('profile [p]: the access key id must be 3-128 printable characters without "/"');
    expect(() => parseCredentials(bad("AK"))).toThrow(message);
    expect(() => parseCredentials(bad("AKIA/SLASH"))).toThrow(message);
    expect(() => parseCredentials(bad("AKIA WITH SPACE"))).toThrow(message);
    expect(() => parseCredentials(bad("AKIAé"))).toThrow(message);
    expect(() => parseCredentials(bad("A".repeat(129)))).toThrow(message);
    expect(pairsOf(bad("A".repeat(128)))).toEqual([["A".repeat(128), "long-enough-secret"]]);
    expect(pairsOf(bad("AKI"))).toEqual([["AKI", "long-enough-secret"]]);
  });

  it("refuses secrets shorter than 8 characters", () => {
    expect(() => parseCredentials("[p]\naws_access_key_id = AKIA\naws_secret_access_key = 1234567\n")).toThrow(
      new Error("profile [p]: the secret access key is shorter than 8 characters"),
    );
    expect(pairsOf("[p]\naws_access_key_id = AKIA\naws_secret_access_key = 12345678\n")).toEqual([["AKIA", "12345678"]]);
  });

  it("never puts a secret into an error message", () => {
    const secret = "super-secret-value-1";
    const texts = [
      `[a]\naws_access_key_id = AKIASAME\naws_secret_access_key = ${secret}\n[b]\naws_access_key_id = AKIASAME\naws_secret_access_key = other-${secret}\n`,
      `[p]\naws_secret_access_key = ${secret}\n`,
      `[p]\naws_access_key_id = A/B\naws_secret_access_key = ${secret}\n`,
    ];
    for (const text of texts) {
      expect(() => parseCredentials(text)).toThrow();
      try {
        parseCredentials(text);
      } catch (err) {
        expect((err as Error).message).not.toContain(secret);
      }
    }
  });

  it("reads back any set of profiles it is given (property)", () => {
    const id = fc.stringMatching(/^[A-Z0-9]{3,20}$/);
    const secret = fc.stringMatching(/^[A-Za-z0-9/+=]{8,40}$/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(id, secret), { selector: ([i]) => i, minLength: 1, maxLength: 6 }), fc.boolean(), (pairs, crlf) => {
        const eol = crlf ? "\r\n" : "\n";
        const text = pairs.map(([i, s], n) => `[profile-${n}]${eol}# comment ${n}${eol}aws_access_key_id = ${i}${eol}aws_secret_access_key=${s}${eol}`).join(eol);
        expect(pairsOf(text)).toEqual(pairs);
      }),
      { numRuns: 200 },
    );
  });
});
