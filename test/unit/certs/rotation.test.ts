import { generateKeyPair } from "node:crypto";
import type * as NodeCrypto from "node:crypto";
import { isDeepStrictEqual, promisify } from "node:util";
import fc from "fast-check";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { bundlePem, issuedBy, keyMatches, parseBundle, parseCertificate, subjectAltNames, type CertificateInfo } from "../../../src/certs/pem.js";
import {
  TLS_SECRET_KEYS,
  applyRotation,
  fromSecretData,
  planRotation,
  toSecretData,
  type RotationSettings,
  type RotationStep,
  type TlsSecretData,
} from "../../../src/certs/rotation.js";

/**
 * RSA-2048 generation costs 50-200 ms a key on the test machine, and this file makes over a
 * hundred certificates. Keys come from a list instead: generated in parallel up front, more
 * added when needed, handed out in order. Each simulation run starts again at the head of the
 * list, so within a run (and within the examples) every certificate has its own key, as in
 * production; only separate runs share keys.
 */
const keys = vi.hoisted(() => ({ kept: [] as unknown[], cursor: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof NodeCrypto>();
  const generate = actual.generateKeyPairSync as unknown as (...args: unknown[]) => unknown;
  const generateKeyPairSync = (...args: unknown[]): unknown => {
    if (keys.cursor === keys.kept.length) keys.kept.push(generate(...args));
    return keys.kept[keys.cursor++];
  };
  return { ...actual, default: { ...actual, generateKeyPairSync }, generateKeyPairSync };
});

beforeAll(async () => {
  const pairs = await Promise.all(Array.from({ length: 18 }, () => promisify(generateKeyPair)("rsa", { modulusLength: 2048 })));
  keys.kept.push(...pairs);
});

const T0 = Date.parse("2030-01-01T00:00:00.000Z");
/** The instant `seconds` after T0 (the examples' certificates are made on whole seconds). */
const s = (seconds: number) => T0 + seconds * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Lifetimes in seconds keep the numbers readable: leaves renew at +6 s, CAs rotate at +20 s. */
const SETTINGS: RotationSettings = {
  caLifetimeMs: 30_000,
  certLifetimeMs: 9_000,
  dnsNames: ["webhook.app-snapshots.svc", "webhook.app-snapshots.svc.cluster.local"],
  ipAddresses: ["127.0.0.1"],
  publishDelayMs: 1_000,
};

const plan = (current: TlsSecretData | undefined, now: number, since?: number, settings = SETTINGS) => planRotation(current, { now, bundlePublishedSince: since }, settings);

/** applyRotation, checking that what it returns survives the trip through a Secret's data. */
function apply(step: RotationStep, current: TlsSecretData | undefined, now: number, settings = SETTINGS): TlsSecretData {
  const next = applyRotation(step, current, now, settings);
  expect(fromSecretData(toSecretData(next))).toEqual(next);
  return next;
}

/** Plans, expects `kind`, and applies it. */
function advance(current: TlsSecretData | undefined, kind: RotationStep["kind"], now: number, since?: number, settings = SETTINGS): TlsSecretData {
  const step = plan(current, now, since, settings);
  expect(step.kind).toBe(kind);
  return apply(step, current, now, settings);
}

function parts(secret: TlsSecretData) {
  return { leaf: parseCertificate(secret["tls.crt"]), signer: parseCertificate(secret["signer.crt"]), bundle: parseBundle(secret["ca.crt"]) };
}

function expectWait(step: RotationStep, until: number): void {
  expect(step).toMatchObject({ kind: "wait" });
  if (step.kind === "wait") expect(iso(step.until)).toBe(iso(until));
}

const once = <T>(make: () => T): (() => T) => {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
};

// The examples' timeline, built on demand; each step is the one the planner asks for.
const created = once(() => advance(undefined, "create", s(0)));
const otherCreated = once(() => advance(undefined, "create", s(0)));
const renewedAt19 = once(() => advance(created(), "issue-leaf", s(19)));
const rotatedAt20 = once(() => advance(renewedAt19(), "rotate-ca", s(20)));
/** The configurations hold the bundle with the new CA from +20.5 s. */
const PUBLISHED = s(20.5);
/** A fresh Secret made at `now` with `settings`. */
const secretMadeAt = (now: number, settings: RotationSettings) => applyRotation({ kind: "create", reason: "test" }, undefined, now, settings);
const newLeafAt22 = once(() => advance(rotatedAt20(), "issue-leaf", s(22), PUBLISHED));
const renewedAt28 = once(() => advance(newLeafAt22(), "issue-leaf", s(28), PUBLISHED));

describe("planRotation: making certificates", () => {
  it("creates everything when the Secret is missing or lacks a key", () => {
    expect(plan(undefined, s(0))).toEqual({ kind: "create", reason: "no certificates yet" });
    const data = toSecretData(created());
    for (const key of TLS_SECRET_KEYS) {
      const { [key]: _dropped, ...rest } = data;
      expect(fromSecretData(rest)).toBeUndefined();
    }
    expect(fromSecretData(undefined)).toBeUndefined();
  });

  it("creates a CA that is the whole bundle and a serving certificate it signed, with the configured names", () => {
    const secret = created();
    const { leaf, signer, bundle } = parts(secret);
    expect(secret["ca.crt"]).toBe(secret["signer.crt"]);
    expect(bundle.map((c) => c.fingerprint)).toEqual([signer.fingerprint]);
    expect(signer.isCa).toBe(true);
    expect(leaf.isCa).toBe(false);
    expect(issuedBy(leaf, signer)).toBe(true);
    expect(keyMatches(signer, secret["signer.key"])).toBe(true);
    expect(keyMatches(leaf, secret["tls.key"])).toBe(true);
    expect(subjectAltNames(leaf)).toEqual(["DNS:webhook.app-snapshots.svc", "DNS:webhook.app-snapshots.svc.cluster.local", "IP:127.0.0.1"]);
    expect([iso(leaf.notBefore), iso(leaf.notAfter)]).toEqual([iso(s(-60)), iso(s(9))]);
    expect([iso(signer.notBefore), iso(signer.notAfter)]).toEqual([iso(s(-60)), iso(s(30))]);
  });

  it("waits until two-thirds of the serving certificate's lifetime, then issues a new one", () => {
    for (const now of [s(0), s(1), s(6) - 1]) expectWait(plan(created(), now), s(6));
    const step = plan(created(), s(6));
    expect(step.kind).toBe("issue-leaf");
    expect(step.reason).toContain("two-thirds");
    expect(step.reason).toContain(iso(s(9)));
  });

  it("renews the serving certificate from the same CA and leaves the CAs alone", () => {
    const before = created();
    const after = renewedAt19();
    const { leaf, signer } = parts(after);
    expect([iso(leaf.notBefore), iso(leaf.notAfter)]).toEqual([iso(s(19 - 60)), iso(s(28))]);
    expect(issuedBy(leaf, signer)).toBe(true);
    expect(keyMatches(leaf, after["tls.key"])).toBe(true);
    expect(after["tls.key"]).not.toBe(before["tls.key"]);
    expect([after["ca.crt"], after["signer.crt"], after["signer.key"]]).toEqual([before["ca.crt"], before["signer.crt"], before["signer.key"]]);
    // The CA's rotation (+20 s) now comes before the leaf's renewal (+25 s).
    expectWait(plan(after, s(19)), s(20));
  });

  it("caps a serving certificate at its CA's expiry", () => {
    const long = { ...SETTINGS, certLifetimeMs: 20_000 };
    const secret = apply({ kind: "issue-leaf", reason: "test" }, created(), s(19), long);
    const { leaf, signer } = parts(secret);
    expect(iso(leaf.notAfter)).toBe(iso(signer.notAfter));
    expect(iso(leaf.notAfter)).toBe(iso(s(30)));
    expect(plan(secret, s(19), undefined, long).kind).toBe("wait");
  });
});

describe("planRotation: unusable Secrets are made anew", () => {
  const damaged = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
  it.each<[string, (own: TlsSecretData, other: TlsSecretData) => TlsSecretData, string]>([
    ["tls.crt is not PEM", (own) => ({ ...own, "tls.crt": "garbage" }), "a certificate does not parse"],
    ["signer.crt is a damaged block", (own) => ({ ...own, "signer.crt": damaged }), "a certificate does not parse"],
    ["ca.crt holds a damaged block", (own) => ({ ...own, "ca.crt": own["ca.crt"] + damaged }), "a certificate does not parse"],
    ["signer.crt is not a CA", (own) => ({ ...own, "signer.crt": own["tls.crt"], "signer.key": own["tls.key"] }), "signer.crt is not a CA"],
    ["signer.key belongs to another CA", (own, other) => ({ ...own, "signer.key": other["signer.key"] }), "signer.key does not belong to signer.crt"],
    ["tls.key belongs to another certificate", (own, other) => ({ ...own, "tls.key": other["tls.key"] }), "tls.key does not belong to tls.crt"],
    ["tls.key is not a key", (own) => ({ ...own, "tls.key": "garbage" }), "tls.key does not belong to tls.crt"],
    ["ca.crt holds another CA", (own, other) => ({ ...own, "ca.crt": other["ca.crt"] }), "ca.crt does not contain the signing CA"],
    ["ca.crt is empty", (own) => ({ ...own, "ca.crt": "" }), "ca.crt does not contain the signing CA"],
  ])("when %s", (_name, spoil, problem) => {
    const step = plan(spoil(created(), otherCreated()), s(1));
    expect(step.kind).toBe("create");
    expect(step.reason).toMatch(/^the Secret is unusable: /);
    expect(step.reason).toContain(problem);
  });

  it("when the signing CA has expired (and rotates it until then)", () => {
    expect(plan(created(), s(30) - 1).kind).toBe("rotate-ca");
    for (const now of [s(30), s(3_600)]) expect(plan(created(), now)).toEqual({ kind: "create", reason: "the Secret is unusable: the signing CA has expired" });
  });

  it("and the new certificates are usable", () => {
    const spoiled = { ...created(), "tls.key": otherCreated()["tls.key"] };
    const secret = advance(spoiled, "create", s(100));
    const { leaf, signer } = parts(secret);
    expect(signer.fingerprint).not.toBe(parts(created()).signer.fingerprint);
    expect(issuedBy(leaf, signer)).toBe(true);
    expectWait(plan(secret, s(100)), s(106));
  });
});

describe("planRotation: names", () => {
  const names = (dnsNames: string[], ipAddresses: string[]) => ({ ...SETTINGS, dnsNames, ipAddresses });
  const [svc, fqdn] = SETTINGS.dnsNames as [string, string];
  it.each([
    ["an extra DNS name", names([svc, fqdn, "webhook.other.svc"], ["127.0.0.1"])],
    ["a DNS name less", names([svc], ["127.0.0.1"])],
    ["a different DNS name", names([svc, "webhook.other.svc"], ["127.0.0.1"])],
    ["an extra IP address", names([svc, fqdn], ["127.0.0.1", "10.0.0.7"])],
    ["an IP address less", names([svc, fqdn], [])],
    ["a different IP address", names([svc, fqdn], ["10.0.0.7"])],
    ["an IP address turned into a DNS name", names([svc, fqdn, "127.0.0.1"], [])],
  ])("renews the serving certificate for %s", (_name, settings) => {
    const step = plan(created(), s(1), undefined, settings);
    expect(step).toEqual({ kind: "issue-leaf", reason: "the serving certificate's names differ from the configured ones" });
  });

  it("does not care about the order of the names", () => {
    expectWait(plan(created(), s(1), undefined, names([fqdn, svc], ["127.0.0.1"])), s(6));
  });

  it("is content with the names after renewing", () => {
    const settings = names([svc, "webhook.other.svc"], ["10.0.0.7", "::1"]);
    const secret = advance(created(), "issue-leaf", s(2), undefined, settings);
    expect(subjectAltNames(parseCertificate(secret["tls.crt"]))).toEqual(["DNS:webhook.app-snapshots.svc", "DNS:webhook.other.svc", "IP:0:0:0:0:0:0:0:1", "IP:10.0.0.7"]);
    expectWait(plan(secret, s(2), undefined, settings), s(8));
  });
});

describe("planRotation: CA rotation", () => {
  it("rotates the CA at two-thirds of its lifetime", () => {
    expectWait(plan(renewedAt19(), s(20) - 1), s(20));
    const step = plan(renewedAt19(), s(20));
    expect(step.kind).toBe("rotate-ca");
    expect(step.reason).toContain(iso(s(30)));
  });

  it("puts the new CA first in the bundle, keeps the old one, and re-issues the serving certificate from the old CA", () => {
    const before = renewedAt19();
    const after = rotatedAt20();
    const old = parts(before).signer;
    const { signer, bundle } = parts(after);
    expect(signer.isCa).toBe(true);
    expect(signer.fingerprint).not.toBe(old.fingerprint);
    expect(signer.x509.subject).not.toBe(old.x509.subject);
    expect(keyMatches(signer, after["signer.key"])).toBe(true);
    expect([iso(signer.notBefore), iso(signer.notAfter)]).toEqual([iso(s(20 - 60)), iso(s(50))]);
    expect(bundle.map((c) => c.fingerprint)).toEqual([signer.fingerprint, old.fingerprint]);
    // A fresh serving certificate from the old CA (still trusted everywhere), capped at its expiry,
    // spans the publication of the new bundle.
    const leaf = parseCertificate(after["tls.crt"]);
    expect(after["tls.crt"]).not.toBe(before["tls.crt"]);
    expect(keyMatches(leaf, after["tls.key"])).toBe(true);
    expect(issuedBy(leaf, old)).toBe(true);
    expect(issuedBy(leaf, signer)).toBe(false);
    expect(iso(leaf.notAfter)).toBe(iso(Math.min(s(20) + 9_000, old.notAfter)));
  });

  it("waits for the configurations to carry the new bundle, then for the publish delay", () => {
    const secret = rotatedAt20();
    const notYet = (now: number) => {
      const step = plan(secret, now);
      expectWait(step, now + 1_000);
      expect(step.reason).toContain("not yet in every webhook configuration");
    };
    notYet(s(20));
    notYet(s(25));
    for (const now of [PUBLISHED, s(21), PUBLISHED + 1_000 - 1]) expectWait(plan(secret, now, PUBLISHED), PUBLISHED + 1_000);
    expect(plan(secret, PUBLISHED + 1_000, PUBLISHED)).toEqual({ kind: "issue-leaf", reason: "the bundle with the new CA is published" });
  });

  it("then serves a certificate of the new CA, trusted through the bundle that holds both", () => {
    const secret = newLeafAt22();
    const { leaf, signer, bundle } = parts(secret);
    const old = parts(renewedAt19()).signer;
    expect(issuedBy(leaf, signer)).toBe(true);
    expect(issuedBy(leaf, old)).toBe(false);
    expect(secret["ca.crt"]).toBe(rotatedAt20()["ca.crt"]);
    expect(bundle).toHaveLength(2);
    // Next: the leaf's renewal (+28 s), before the old CA's expiry (+30 s); publication no longer matters.
    expectWait(plan(secret, s(22), PUBLISHED), s(28));
    expectWait(plan(secret, s(22)), s(28));
  });

  it("drops CAs that have expired when it rotates again", () => {
    const secret = advance(newLeafAt22(), "rotate-ca", s(40));
    const { signer, bundle } = parts(secret);
    expect(bundle.map((c) => c.fingerprint)).toEqual([signer.fingerprint, parts(newLeafAt22()).signer.fingerprint]);
  });
});

describe("planRotation: lifetimes lowered after issue (helm upgrade --set certs.caLifetime=...)", () => {
  const shorter = { ...SETTINGS, caLifetimeMs: 15_000, certLifetimeMs: 4_000 };

  it("rotates a CA issued for longer than the configured lifetime at once, by the publish-first path", () => {
    const step = plan(created(), s(1), undefined, shorter);
    expect(step).toEqual({ kind: "rotate-ca", reason: "the CA is valid for longer than the configured 15s" });
    const rotated = apply(step, created(), s(1), shorter);
    const { leaf, signer, bundle } = parts(rotated);
    expect(signer.notAfter - (signer.notBefore + 60_000)).toBe(15_000);
    // The old CA stays trusted and still signs what is served until the new bundle is published.
    expect(bundle.map((c) => c.fingerprint)).toEqual([signer.fingerprint, parts(created()).signer.fingerprint]);
    expect(issuedBy(leaf, signer)).toBe(false);
    expect(plan(rotated, s(2), undefined, shorter).kind).toBe("wait");
    const renewed = advance(rotated, "issue-leaf", s(3), s(2), shorter);
    expect(issuedBy(parts(renewed).leaf, parts(renewed).signer)).toBe(true);
    // Done: the new certificates have the configured lifetimes, so the lowered setting asks for nothing more.
    expect(plan(renewed, s(3), s(2), shorter).kind).toBe("wait");
  });

  it("re-issues a serving certificate issued for longer than the configured lifetime, from the same CA", () => {
    const step = plan(created(), s(1), undefined, { ...SETTINGS, certLifetimeMs: 4_000 });
    expect(step).toEqual({ kind: "issue-leaf", reason: "the serving certificate is valid for longer than the configured 4s" });
  });

  it("leaves certificates alone when a lifetime is raised, or kept, whatever the sub-second instant they were made at", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 2, max: 3_000 }), (ms, lifetimeS) => {
        const settings = { ...SETTINGS, caLifetimeMs: lifetimeS * 3_000, certLifetimeMs: lifetimeS * 1_000 };
        for (const lifetime of [settings, { ...settings, caLifetimeMs: settings.caLifetimeMs * 2, certLifetimeMs: settings.certLifetimeMs * 2 }]) {
          const step = plan(secretMadeAt(s(0) + ms, settings), s(0) + ms + 1, undefined, lifetime);
          expect(step.kind).toBe("wait");
        }
      }),
      { numRuns: 10 },
    );
  });
});

describe("planRotation: pruning", () => {
  it("removes the old CA from the bundle once it has expired, keeping the signer and the serving certificate", () => {
    const before = renewedAt28();
    expectWait(plan(before, s(30) - 1), s(30));
    const step = plan(before, s(30));
    expect(step).toEqual({ kind: "prune-bundle", reason: "1 expired CA(s) in the bundle" });
    const after = apply(step, before, s(30));
    const { signer, bundle } = parts(after);
    expect(bundle.map((c) => c.fingerprint)).toEqual([signer.fingerprint]);
    expect(after["ca.crt"]).toBe(bundlePem([signer]));
    expect({ ...after, "ca.crt": "" }).toEqual({ ...before, "ca.crt": "" });
    // Next: the leaf's renewal (+34 s) before the CA's rotation (+40 s).
    expectWait(plan(after, s(30)), s(34));
  });
});

describe("applyRotation", () => {
  it("keeps the Secret as it is for a wait", () => {
    const secret = created();
    expect(applyRotation({ kind: "wait", reason: "test", until: s(6) }, secret, s(1), SETTINGS)).toBe(secret);
  });

  it("refuses steps that need certificates when there are none", () => {
    expect(() => applyRotation({ kind: "wait", reason: "test", until: s(6) }, undefined, s(1), SETTINGS)).toThrow("nothing to keep");
    for (const kind of ["rotate-ca", "issue-leaf", "prune-bundle"] as const) {
      expect(() => applyRotation({ kind, reason: "test" }, undefined, s(1), SETTINGS)).toThrow(`${kind} needs existing certificates`);
    }
  });

  it("converts to and from a Secret's base64 data, ignoring other keys", () => {
    const secret = created();
    const data = toSecretData(secret);
    expect(Object.keys(data).sort()).toEqual([...TLS_SECRET_KEYS].sort());
    for (const key of TLS_SECRET_KEYS) expect(Buffer.from(data[key]!, "base64").toString()).toBe(secret[key]);
    expect(fromSecretData({ ...data, "extra.txt": Buffer.from("x").toString("base64") })).toEqual(secret);
  });
});

// ---------------------------------------------------------------------------------------------
// Simulation: a leader running plan→apply on a virtual clock, configurations receiving the bundle
// after a lag, and the invariants the apiserver depends on checked at every tick.

const SIM_SETTINGS: RotationSettings = { caLifetimeMs: 30_000, certLifetimeMs: 9_000, dnsNames: ["webhook.app-snapshots.svc"], ipAddresses: [], publishDelayMs: 1_000 };
const SIM_EPOCH = Date.parse("2031-05-05T05:05:05.000Z");
const LEADER_MAX_GAP_MS = 1_000;

interface Scenario {
  /** Where in its second the simulation starts (certificate validity has whole seconds). */
  offsetMs: number;
  /** How long before the start the Secret was created (and published). */
  ageMs: number;
  durationMs: number;
  /** Cycled: how far the clock moves after each tick, and whether the leader runs at it (it is forced to when it would otherwise sit out more than LEADER_MAX_GAP_MS). */
  ticks: Array<{ dt: number; leaderRuns: boolean }>;
  /** Per webhook configuration, cycled: how long each new ca.crt takes to reach it. */
  lags: number[][];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  offsetMs: fc.nat({ max: 999 }),
  ageMs: fc.nat({ max: 5_000 }),
  durationMs: fc.integer({ min: 60_000, max: 68_000 }),
  ticks: fc.array(fc.record({ dt: fc.noBias(fc.integer({ min: 50, max: 1_000 })), leaderRuns: fc.boolean() }), { minLength: 20, maxLength: 40 }),
  lags: fc.array(fc.array(fc.noBias(fc.integer({ min: 0, max: 500 })), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }),
});

type Planner = typeof planRotation;
type Applier = typeof applyRotation;

interface SimulationResult {
  violation?: string;
  steps: Partial<Record<RotationStep["kind"], number>>;
}

function simulate(scenario: Scenario, plan: Planner = planRotation, apply: Applier = applyRotation): SimulationResult {
  keys.cursor = 0;
  return run(scenario, plan, apply);
}

function run(scenario: Scenario, plan: Planner, apply: Applier): SimulationResult {
  const start = SIM_EPOCH + scenario.offsetMs;
  let now = start;
  const steps: SimulationResult["steps"] = {};
  const fail = (violation: string): SimulationResult => ({ violation: `at +${((now - start) / 1000).toFixed(3)} s: ${violation}`, steps });

  const certificates = new Map<string, CertificateInfo>();
  const bundles = new Map<string, CertificateInfo[]>();
  const signatures = new Map<string, boolean>();
  const cert = (pem: string) => certificates.get(pem) ?? certificates.set(pem, parseCertificate(pem)).get(pem)!;
  const bundle = (pem: string) => bundles.get(pem) ?? bundles.set(pem, parseBundle(pem)).get(pem)!;
  const signed = (leaf: CertificateInfo, ca: CertificateInfo) => {
    const key = leaf.fingerprint + ca.fingerprint;
    return signatures.get(key) ?? signatures.set(key, issuedBy(leaf, ca)).get(key)!;
  };
  const validAt = (c: CertificateInfo) => c.notBefore <= now && now < c.notAfter;

  let secret = apply({ kind: "create", reason: "simulation start" }, undefined, start - scenario.ageMs, SIM_SETTINGS);
  const usedKeys = new Set([secret["tls.key"], secret["signer.key"]]);
  const configurations = scenario.lags.map((lags) => ({ lags, changes: 0, held: secret["ca.crt"], since: start - scenario.ageMs, pending: undefined as { bundle: string; at: number } | undefined }));
  const publishedSince = () => (configurations.every((c) => c.held === secret["ca.crt"]) ? Math.max(...configurations.map((c) => c.since)) : undefined);
  const write = (next: TlsSecretData) => {
    if (next["ca.crt"] !== secret["ca.crt"]) {
      for (const c of configurations) c.pending = { bundle: next["ca.crt"], at: now + c.lags[c.changes++ % c.lags.length]! };
    }
    secret = next;
  };
  const deliver = () => {
    for (const c of configurations) {
      if (c.pending && c.pending.at <= now) {
        c.held = c.pending.bundle;
        c.since = c.pending.at;
        c.pending = undefined;
      }
    }
  };
  const check = (when: string): string | undefined => {
    const leaf = cert(secret["tls.crt"]);
    if (!validAt(leaf)) return `${when}: the serving certificate is not valid (${iso(leaf.notBefore)} to ${iso(leaf.notAfter)})`;
    for (const [i, c] of configurations.entries()) {
      if (!bundle(c.held).some((ca) => validAt(ca) && signed(leaf, ca))) return `${when}: configuration ${i} does not trust the serving certificate`;
    }
    const cas = bundle(secret["ca.crt"]);
    if (cas.length > 2) return `${when}: the bundle holds ${cas.length} CAs`;
    const signer = cert(secret["signer.crt"]);
    if (!cas.some((ca) => ca.fingerprint === signer.fingerprint)) return `${when}: the bundle lacks the signing CA`;
    const issuer = cas.find((ca) => signed(leaf, ca));
    if (issuer && leaf.notAfter > issuer.notAfter) return `${when}: the serving certificate outlives its CA`;
    return undefined;
  };

  let lastRun = -Infinity;
  for (let i = 0; now < start + scenario.durationMs; i++) {
    const tick = scenario.ticks[i % scenario.ticks.length]!;
    deliver();
    const before = check("before the leader's turn");
    if (before) return fail(before);
    if (tick.leaderRuns || now + tick.dt - lastRun > LEADER_MAX_GAP_MS) {
      lastRun = now;
      let previous: RotationStep["kind"] | undefined;
      for (;;) {
        const view = { now, bundlePublishedSince: publishedSince() };
        const step = plan(secret, view, SIM_SETTINGS);
        if (step.kind === "wait") {
          if (!(step.until > now)) return fail(`a wait until ${iso(step.until)}, which is not in the future`);
          break;
        }
        if (!isDeepStrictEqual(plan(secret, view, SIM_SETTINGS), step)) return fail("planning twice without a change gave different steps");
        if (step.kind === previous) return fail(`${step.kind} planned again right after it was applied (busy loop)`);
        if (step.kind === "create") return fail(`had to start over: ${step.reason}`);
        steps[step.kind] = (steps[step.kind] ?? 0) + 1;
        const next = apply(step, secret, now, SIM_SETTINGS);
        if (!isDeepStrictEqual(fromSecretData(toSecretData(next)), next)) return fail(`${step.kind} made certificates that do not survive a Secret`);
        for (const key of ["tls.key", "signer.key"] as const) {
          if (next[key] === secret[key]) continue;
          if (usedKeys.has(next[key])) return fail(`${step.kind} reused a private key`);
          usedKeys.add(next[key]);
        }
        write(next);
        previous = step.kind;
      }
      const after = check("after the leader's turn");
      if (after) return fail(after);
    }
    now += tick.dt;
  }
  return { steps };
}

/** Runs the simulation with a broken planner or applier; the checker must report a violation. */
function expectViolation(plan: Planner, apply: Applier, pattern: RegExp): void {
  let violation: string | undefined;
  const details = fc.check(
    fc.property(scenario, (sc) => {
      violation = simulate(sc, plan, apply).violation;
      return violation === undefined;
    }),
    { numRuns: 3, endOnFailure: true },
  );
  expect(details.failed).toBe(true);
  expect(violation).toMatch(pattern);
}

describe("rotation simulated on a virtual clock", () => {
  it("always serves a trusted, valid certificate from a bounded bundle, without busy loops", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { violation, steps } = simulate(sc);
        expect(violation).toBeUndefined();
        // Over 60 s of 30 s CAs and 9 s leaves every kind of step happens (the property is not vacuous).
        expect(steps["rotate-ca"]).toBeGreaterThanOrEqual(2);
        expect(steps["prune-bundle"]).toBeGreaterThanOrEqual(1);
        expect(steps["issue-leaf"]).toBeGreaterThanOrEqual(8);
      }),
      { numRuns: 6, endOnFailure: true },
    );
  });

  it("catches a planner that serves the new CA's certificate before the bundle is published", () => {
    const impatient: Planner = (current, view, settings) => planRotation(current, { now: view.now, bundlePublishedSince: view.now - settings.publishDelayMs }, settings);
    expectViolation(impatient, applyRotation, /does not trust the serving certificate/);
  });

  it("catches a planner that never renews serving certificates", () => {
    const lazy: Planner = (current, view, settings) => {
      const step = planRotation(current, view, settings);
      return step.kind === "issue-leaf" && step.reason.startsWith("two-thirds") ? { kind: "wait", reason: "lazy", until: view.now + 1_000 } : step;
    };
    expectViolation(lazy, applyRotation, /the serving certificate is not valid/);
  });

  it("catches a bundle that keeps every CA", () => {
    const neverPrune: Planner = (current, view, settings) => {
      const step = planRotation(current, view, settings);
      return step.kind === "prune-bundle" ? { kind: "wait", reason: "hoarding", until: view.now + 1_000 } : step;
    };
    const keepAll: Applier = (step, current, now, settings) => {
      const next = applyRotation(step, current, now, settings);
      return step.kind === "rotate-ca" && current ? { ...next, "ca.crt": bundlePem([parseCertificate(next["signer.crt"]), ...parseBundle(current["ca.crt"])]) } : next;
    };
    expectViolation(neverPrune, keepAll, /the bundle holds 3 CAs/);
  });

  it("catches a step that changes nothing and is planned again (busy loop)", () => {
    const noPrune: Applier = (step, current, now, settings) => (step.kind === "prune-bundle" && current ? current : applyRotation(step, current, now, settings));
    expectViolation(planRotation, noPrune, /prune-bundle planned again right after it was applied/);
  });
});
