import { X509Certificate } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CLOCK_SKEW_MS, createCa, issueCertificate, type KeyPair } from "../../../src/certs/authority.js";
import { bundlePem, issuedBy, keyMatches, parseBundle, parseCertificate, subjectAltNames } from "../../../src/certs/pem.js";

// Five certificates in all (key generation dominates the cost of this file).
const NOW = new Date("2030-03-01T08:00:00.000Z");
const caA = createCa({ commonName: "pem-ca-a", validitySeconds: 3_600, now: NOW });
const caB = createCa({ commonName: "pem-ca-b", validitySeconds: 3_600, now: NOW });
/** Same subject as caA, different key: only the signature tells them apart. */
const caA2 = createCa({ commonName: "pem-ca-a", validitySeconds: 3_600, now: NOW });
const leafOf = (ca: KeyPair) => issueCertificate(ca, { commonName: "svc", dnsNames: ["b.ns.svc", "a.ns.svc"], ipAddresses: ["10.0.0.1", "::1"], usage: "server", validitySeconds: 600, now: NOW });
const leafA = leafOf(caA);
const leafA2 = leafOf(caA2);

const all = { caA, caB, caA2, leafA, leafA2 };
const fingerprint = (pair: KeyPair) => new X509Certificate(pair.certPem).fingerprint256;

describe("parseCertificate", () => {
  it("reads validity, CA flag and fingerprint", () => {
    const ca = parseCertificate(caA.certPem);
    expect(ca.notBefore).toBe(NOW.getTime() - CLOCK_SKEW_MS);
    expect(ca.notAfter).toBe(NOW.getTime() + 3_600_000);
    expect(ca.isCa).toBe(true);
    expect(ca.fingerprint).toBe(fingerprint(caA));
    const leaf = parseCertificate(leafA.certPem);
    expect(leaf.isCa).toBe(false);
    expect(leaf.notAfter).toBe(NOW.getTime() + 600_000);
    expect(leaf.fingerprint).not.toBe(ca.fingerprint);
  });

  it("normalises the PEM to one certificate with LF line ends", () => {
    const parsed = parseCertificate(caA.certPem.replace(/\r?\n/g, "\r\n"));
    expect(parsed.pem).not.toContain("\r");
    expect(parsed.pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(new X509Certificate(parsed.pem).fingerprint256).toBe(fingerprint(caA));
  });

  it("throws on text that is not a certificate", () => {
    expect(() => parseCertificate("not a certificate")).toThrow();
    expect(() => parseCertificate(caA.keyPem)).toThrow();
  });
});

describe("parseBundle and bundlePem", () => {
  const names = Object.keys(all) as Array<keyof typeof all>;
  const bundleText = fc.array(
    fc.record({
      cert: fc.constantFrom(...names),
      lineEnds: fc.constantFrom("\n", "\r\n"),
      before: fc.constantFrom("", "\n", "\r\n\r\n", "# comment\n", "Subject: CN=pem-ca-a\n", "junk without markers "),
    }),
    { maxLength: 7 },
  );

  it("returns every certificate of a bundle, in order, whatever lies between them", () => {
    fc.assert(
      fc.property(bundleText, fc.constantFrom("", "\n", "trailing text\n"), (blocks, after) => {
        const text = blocks.map((b) => b.before + all[b.cert].certPem.replace(/\r?\n/g, b.lineEnds)).join("") + after;
        const parsed = parseBundle(text);
        expect(parsed).toHaveLength(blocks.length);
        expect(parsed.map((c) => c.fingerprint)).toEqual(blocks.map((b) => fingerprint(all[b.cert])));
      }),
      { numRuns: 100 },
    );
  });

  it("writes a bundle that parses back to the same certificates and is written the same way again", () => {
    fc.assert(
      fc.property(bundleText, (blocks) => {
        const parsed = parseBundle(blocks.map((b) => b.before + all[b.cert].certPem.replace(/\r?\n/g, b.lineEnds)).join(""));
        const text = bundlePem(parsed);
        const again = parseBundle(text);
        expect(again.map((c) => c.fingerprint)).toEqual(parsed.map((c) => c.fingerprint));
        expect(bundlePem(again)).toBe(text);
        // Nothing but certificates, each ending in exactly one newline.
        expect(text).toBe(parsed.map((c) => new X509Certificate(c.pem).toString().trimEnd() + "\n").join(""));
        expect(text).not.toMatch(/\n\n|\r|#|junk/);
      }),
      { numRuns: 100 },
    );
  });

  it("is empty for text without certificates and throws on a damaged block", () => {
    expect(parseBundle("")).toEqual([]);
    expect(parseBundle("no certificates here\n")).toEqual([]);
    expect(bundlePem([])).toBe("");
    const damaged = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    expect(() => parseBundle(caA.certPem + damaged + caB.certPem)).toThrow();
  });
});

describe("keyMatches", () => {
  it("is true only for the certificate's own private key", () => {
    const ca = parseCertificate(caA.certPem);
    expect(keyMatches(ca, caA.keyPem)).toBe(true);
    expect(keyMatches(ca, caA2.keyPem)).toBe(false);
    expect(keyMatches(ca, leafA.keyPem)).toBe(false);
    expect(keyMatches(parseCertificate(leafA.certPem), leafA.keyPem)).toBe(true);
    expect(keyMatches(parseCertificate(leafA.certPem), caA.keyPem)).toBe(false);
  });

  it("is false, not an exception, for a key that does not parse or is a public key", () => {
    const ca = parseCertificate(caA.certPem);
    expect(keyMatches(ca, "")).toBe(false);
    expect(keyMatches(ca, "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")).toBe(false);
    expect(keyMatches(ca, ca.x509.publicKey.export({ type: "spki", format: "pem" }).toString())).toBe(false);
  });
});

describe("issuedBy", () => {
  it("has two CAs with the same subject to tell apart", () => {
    expect(parseCertificate(caA2.certPem).x509.subject).toBe(parseCertificate(caA.certPem).x509.subject);
    expect(parseCertificate(caB.certPem).x509.subject).not.toBe(parseCertificate(caA.certPem).x509.subject);
  });

  it.each([
    ["leafA", "caA", true],
    ["leafA", "caB", false], // another CA, another name
    ["leafA", "caA2", false], // another CA, same name
    ["leafA2", "caA2", true],
    ["leafA2", "caA", false],
    ["caA", "caA", true], // self-signed
    ["caA2", "caA", false],
    ["caA", "caA2", false],
    ["caB", "caA", false],
    ["caA", "leafA", false], // a leaf issues nothing, not even with its issuer's name
  ] as const)("%s issued by %s: %s", (subject, issuer, expected) => {
    expect(issuedBy(parseCertificate(all[subject].certPem), parseCertificate(all[issuer].certPem))).toBe(expected);
  });
});

describe("subjectAltNames", () => {
  it("lists DNS and IP names sorted, IPv6 written out, and nothing for a CA", () => {
    expect(subjectAltNames(parseCertificate(leafA.certPem))).toEqual(["DNS:a.ns.svc", "DNS:b.ns.svc", "IP:0:0:0:0:0:0:0:1", "IP:10.0.0.1"]);
    expect(subjectAltNames(parseCertificate(caA.certPem))).toEqual([]);
  });
});
