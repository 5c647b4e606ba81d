import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lvpPluginSign as independentSign } from "../../storage/lvpPluginSign.js";
import { goPathEscape, goQueryEscape, signLvpUrl, verifyLvpRequest, type LvpRequest } from "../../../src/storage/lvpSignature.js";

/** What the file server sees of a URL: its path (decoded) and query, plus where it may have been issued for. */
function requestFor(url: string, hosts: string[]): LvpRequest {
  const parsed = new URL(url);
  return {
    path: decodeURIComponent(parsed.pathname),
    query: [...parsed.searchParams],
    origins: hosts.flatMap((host) => [
      { scheme: "http", host },
      { scheme: "https", host },
    ]),
  };
}

const KEY = Buffer.from("0123456789abcdef");
const NOW = new Date("2026-11-22T10:00:00.000Z");
const LATER = new Date("2026-11-22T10:10:00.000Z");
const POD = "10.244.1.17";

describe("LVP signed URLs", () => {
  const issued = independentSign(KEY, `${POD}:3000`, "nfs-snapshots", "backups/backup-41/backup-41-logs.gz", LATER);

  it("mints exactly the URL LVP's plugin mints", () => {
    expect(signLvpUrl(KEY, `http://${POD}:3000`, "nfs-snapshots", "backups/backup-41/backup-41-logs.gz", LATER)).toBe(issued);
    expect(issued).toMatch(/&signature=[A-Za-z0-9_-]{27}=$/);
  });

  it("verifies a URL from LVP's plugin at the pod IP it names", () => {
    expect(verifyLvpRequest(requestFor(issued, [`${POD}:3000`]), [KEY], NOW)).toEqual({ ok: true, expires: LATER });
  });

  it("verifies it when it arrives through a Service, port-forward or ingress (another Host), given the issued host", () => {
    const viaService = issued.replace(`${POD}:3000`, "velero-lvp.velero.svc:3000");
    expect(verifyLvpRequest(requestFor(viaService, ["velero-lvp.velero.svc:3000", `${POD}:3000`]), [KEY], NOW).ok).toBe(true);
    const viaPortForward = issued.replace(`${POD}:3000`, "127.0.0.1:53000");
    expect(verifyLvpRequest(requestFor(viaPortForward, ["127.0.0.1:53000", `${POD}:3000`]), [KEY], NOW).ok).toBe(true);
  });

  it("verifies URLs minted for the request's own Host, over http or https (TLS ended at an ingress)", () => {
    const minted = signLvpUrl(KEY, "https://backups.example.com", "velero", "backups/b/b.tar.gz", LATER);
    expect(verifyLvpRequest(requestFor(minted, ["backups.example.com"]), [KEY], NOW).ok).toBe(true);
    expect(verifyLvpRequest(requestFor(minted, ["other.example.com"]), [KEY], NOW)).toEqual({ ok: false, reason: "the signature does not match this URL" });
  });

  it("accepts any of several keys (rotation)", () => {
    expect(verifyLvpRequest(requestFor(issued, [`${POD}:3000`]), [Buffer.from("new key"), KEY], NOW).ok).toBe(true);
  });

  const tampered: Array<[string, (url: string) => string, string, Date?]> = [
    ["another key in the same bucket", (u) => u.replace("backup-41-logs.gz", "backup-41.tar.gz"), "the signature does not match this URL"],
    ["another bucket", (u) => u.replace("/nfs-snapshots/", "/other-bucket/"), "the signature does not match this URL"],
    ["a later expiry", (u) => u.replace("10%3A10%3A00.000Z", "11%3A10%3A00.000Z"), "the signature does not match this URL"],
    ["an added parameter", (u) => `${u}&download=1`, "the signature does not match this URL"],
    ["a changed signature", (u) => u.replace(/signature=(.)/, (_m, c: string) => `signature=${c === "A" ? "B" : "A"}`), "the signature does not match this URL"],
    ["no signature", (u) => u.replace(/&signature=.*$/, ""), "the URL has no signature"],
    ["two signatures", (u) => `${u}&signature=${u.split("signature=")[1]}`, "the URL has more than one signature"],
    ["a signature that is not base64url", (u) => u.replace(/signature=.*$/, "signature=abc"), "the signature is not URL-safe base64 of 20 bytes"],
    ["no expiry", (u) => u.replace(/expires=[^&]*&/, ""), "the URL has no expires parameter"],
    ["two expiries", (u) => u.replace("?", "?expires=2030-01-01T00%3A00%3A00.000Z&"), "the URL has more than one expires parameter"],
    ["a malformed expiry", (u) => u.replace(/expires=[^&]*/, "expires=tomorrow"), "the expires parameter is not a time like 2006-01-02T15:04:05.000Z"],
    ["an impossible date", (u) => u.replace(/expires=[^&]*/, "expires=2026-02-30T10%3A00%3A00.000Z"), "the expires parameter is not a time like 2006-01-02T15:04:05.000Z"],
    ["an expired URL", (u) => u, "the URL has expired", new Date("2026-11-22T10:10:00.001Z")],
  ];
  it.each(tampered)("refuses %s", (_name, tamper, reason, now = NOW) => {
    expect(verifyLvpRequest(requestFor(tamper(issued), [`${POD}:3000`]), [KEY], now)).toEqual({ ok: false, reason });
  });

  it("refuses a URL for another host, and any URL when no key is known", () => {
    expect(verifyLvpRequest(requestFor(issued, ["10.244.1.18:3000"]), [KEY], NOW).ok).toBe(false);
    expect(verifyLvpRequest(requestFor(issued, [`${POD}:3000`]), [], NOW)).toEqual({ ok: false, reason: "no signing key is configured" });
    expect(verifyLvpRequest(requestFor(issued, [`${POD}:3000`]), [Buffer.from("wrong")], NOW).ok).toBe(false);
  });

  it("a dot segment changes the path a URL parser sees, so such keys cannot round-trip (the store rejects them)", () => {
    const url = signLvpUrl(KEY, `http://${POD}:3000`, "velero", "a/../b", LATER);
    expect(new URL(url).pathname).toBe("/velero/b");
  });

  it("round-trips any key, and a signature never verifies for a different key", () => {
    // Keys the store accepts: no leading "/", no NUL, no "." or ".." segment (a URL parser would resolve those).
    const key = fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 30 })
      .filter((k) => !k.startsWith("/") && !k.includes("\0") && !k.split("/").some((s) => s === "." || s === ".."));
    fc.assert(
      fc.property(key, key, (a, b) => {
        const url = signLvpUrl(KEY, `http://${POD}:3000`, "velero", a, LATER);
        expect(verifyLvpRequest(requestFor(url, [`${POD}:3000`]), [KEY], NOW).ok).toBe(true);
        if (a !== b) {
          const other = { ...requestFor(url, [`${POD}:3000`]), path: `/velero/${b}` };
          expect(verifyLvpRequest(other, [KEY], NOW).ok).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("escapes like Go's url package", () => {
    expect(goQueryEscape("2026-11-22T10:10:00.000Z")).toBe("2026-11-22T10%3A10%3A00.000Z");
    expect(goQueryEscape("a b+c/d~e!'()*")).toBe("a+b%2Bc%2Fd~e%21%27%28%29%2A");
    expect(goPathEscape("/b/a b/ü/$&+,:;=@/x?y#z!")).toBe("/b/a%20b/%C3%BC/$&+,:;=@/x%3Fy%23z%21");
  });
});
