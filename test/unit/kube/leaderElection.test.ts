import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { leaseDecision, type LeaseDecision, type LeaseSpec } from "../../../src/kube/leaderElection.js";

const T = Date.parse("2030-06-01T12:00:00.000Z");
/** Kubernetes MicroTime: RFC 3339, UTC, exactly six fractional digits. */
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function written(decision: LeaseDecision): LeaseSpec {
  if (decision.action === "follow") throw new Error(`expected a write, got follow (${decision.holder})`);
  return decision.spec;
}

describe("leaseDecision", () => {
  it("creates the Lease when there is none", () => {
    const decision = leaseDecision(undefined, "pod-a", T, 15);
    expect(decision.action).toBe("create");
    const spec = written(decision);
    expect(spec).toEqual({ holderIdentity: "pod-a", leaseDurationSeconds: 15, acquireTime: spec.renewTime, renewTime: spec.renewTime, leaseTransitions: 0 });
    expect(Date.parse(spec.renewTime!)).toBe(T);
  });

  it("renews its own Lease, keeping acquireTime and transitions, even after it expired", () => {
    const current: LeaseSpec = { holderIdentity: "pod-a", leaseDurationSeconds: 10, acquireTime: "2030-06-01T11:00:00.000000Z", renewTime: "2030-06-01T11:59:55.000000Z", leaseTransitions: 4 };
    for (const now of [T, T + 3_600_000]) {
      const decision = leaseDecision(current, "pod-a", now, 15);
      expect(decision.action).toBe("renew");
      const spec = written(decision);
      expect(spec.holderIdentity).toBe("pod-a");
      expect(spec.acquireTime).toBe(current.acquireTime);
      expect(spec.leaseTransitions).toBe(4);
      expect(spec.leaseDurationSeconds).toBe(15);
      expect(Date.parse(spec.renewTime!)).toBe(now);
    }
  });

  it("sets acquireTime to now when renewing a Lease that lacks it", () => {
    const spec = written(leaseDecision({ holderIdentity: "pod-a", renewTime: "2030-06-01T11:59:59.000000Z" }, "pod-a", T, 15));
    expect(Date.parse(spec.acquireTime!)).toBe(T);
    expect(spec.leaseTransitions).toBe(0);
  });

  it("follows another holder until renewTime + its leaseDurationSeconds, then takes over counting a transition", () => {
    const renewed = T - 5_000;
    const current: LeaseSpec = { holderIdentity: "pod-b", leaseDurationSeconds: 10, acquireTime: "2030-06-01T10:00:00.000000Z", renewTime: new Date(renewed).toISOString(), leaseTransitions: 2 };
    const expiresAt = renewed + 10_000;
    for (const now of [T, expiresAt - 1]) {
      expect(leaseDecision(current, "pod-a", now, 15)).toEqual({ action: "follow", holder: "pod-b", expiresAt });
    }
    const decision = leaseDecision(current, "pod-a", expiresAt, 15);
    expect(decision.action).toBe("take-over");
    const spec = written(decision);
    expect(spec.holderIdentity).toBe("pod-a");
    expect(spec.leaseTransitions).toBe(3);
    expect(spec.leaseDurationSeconds).toBe(15);
    expect(Date.parse(spec.acquireTime!)).toBe(expiresAt);
    expect(spec.renewTime).toBe(spec.acquireTime);
  });

  it("uses its own duration when the Lease does not state one", () => {
    const current: LeaseSpec = { holderIdentity: "pod-b", renewTime: new Date(T).toISOString() };
    expect(leaseDecision(current, "pod-a", T + 1_000, 7)).toEqual({ action: "follow", holder: "pod-b", expiresAt: T + 7_000 });
    expect(leaseDecision(current, "pod-a", T + 7_000, 7).action).toBe("take-over");
  });

  it("reads renewTimes with microseconds written by other clients", () => {
    const current: LeaseSpec = { holderIdentity: "pod-b", leaseDurationSeconds: 15, renewTime: "2030-06-01T12:00:00.123456Z" };
    expect(leaseDecision(current, "pod-a", T, 15)).toEqual({ action: "follow", holder: "pod-b", expiresAt: T + 123 + 15_000 });
  });

  it.each([
    ["an empty holder", ""],
    ["no holder", undefined],
  ])("takes over a released Lease (%s) at once, without counting a transition", (_name, holderIdentity) => {
    const current: LeaseSpec = { holderIdentity, leaseDurationSeconds: 1, acquireTime: "2030-06-01T11:00:00.000000Z", renewTime: new Date(T).toISOString(), leaseTransitions: 5 };
    const decision = leaseDecision(current, "pod-a", T, 15);
    expect(decision.action).toBe("take-over");
    const spec = written(decision);
    expect(spec.holderIdentity).toBe("pod-a");
    expect(spec.leaseTransitions).toBe(5);
    expect(Date.parse(spec.acquireTime!)).toBe(T);
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["garbled", "yesterday at noon"],
  ])("treats a %s renewTime as expired", (_name, renewTime) => {
    const current: LeaseSpec = { holderIdentity: "pod-b", leaseDurationSeconds: 3_600, renewTime, leaseTransitions: 1 };
    const decision = leaseDecision(current, "pod-a", T, 15);
    expect(decision.action).toBe("take-over");
    expect(written(decision).leaseTransitions).toBe(2);
  });

  it("writes MicroTime with microseconds that parses back to the instant, for any instant", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.parse("9999-12-31T23:59:59.999Z") }), (now) => {
        const spec = written(leaseDecision(undefined, "pod-a", now, 15));
        expect(spec.renewTime).toMatch(MICRO_TIME);
        expect(spec.renewTime!.slice(20, 26)).toBe(String(now % 1000).padStart(3, "0") + "000");
        expect(Date.parse(spec.renewTime!)).toBe(now);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * Candidates electing through one Lease with optimistic concurrency: a candidate reads the
 * Lease (and decides at that instant), and later writes its decision, which only succeeds when
 * nobody wrote since its read (the resourceVersion check; a create fails when a Lease exists).
 * A candidate whose write succeeded leads until decision time + its lease duration; a failed
 * write or a `follow` ends its leadership, as LeaderElector does.
 */
interface Election {
  initial: LeaseSpec | undefined;
  durations: number[];
  events: Array<{ who: number; write: boolean; dt: number }>;
}

type Decide = typeof leaseDecision;

/** The first violation (two leaders, or a leader the Lease does not name), and who ever led. */
function runElection(election: Election, decide: Decide = leaseDecision, checkVersions = true): { violation?: string; everLed: Set<string> } {
  const everLed = new Set<string>();
  const identities = election.durations.map((_, i) => `pod-${String.fromCharCode(97 + i)}`);
  const store = { spec: election.initial, version: 0 };
  const candidates = election.durations.map((durationSeconds, i) => ({
    identity: identities[i]!,
    durationSeconds,
    pending: undefined as { version: number; at: number; spec: LeaseSpec } | undefined,
    leaderUntil: undefined as number | undefined,
  }));
  let now = T;
  for (const event of election.events) {
    now += event.dt;
    const candidate = candidates[event.who % candidates.length]!;
    if (event.write && candidate.pending) {
      const { pending } = candidate;
      candidate.pending = undefined;
      if (!checkVersions || store.version === pending.version) {
        store.spec = pending.spec;
        store.version++;
        candidate.leaderUntil = pending.at + candidate.durationSeconds * 1000;
        everLed.add(candidate.identity);
      } else {
        candidate.leaderUntil = undefined;
      }
    } else {
      const decision = decide(store.spec, candidate.identity, now, candidate.durationSeconds);
      if (decision.action === "follow") {
        candidate.pending = undefined;
        candidate.leaderUntil = undefined;
      } else {
        candidate.pending = { version: store.version, at: now, spec: decision.spec };
      }
    }
    const leaders = candidates.filter((c) => c.leaderUntil !== undefined && c.leaderUntil > now);
    if (leaders.length > 1) return { violation: `at +${now - T} ms ${leaders.map((c) => c.identity).join(" and ")} both lead`, everLed };
    const leader = leaders[0];
    if (leader && store.spec?.holderIdentity !== leader.identity) return { violation: `at +${now - T} ms ${leader.identity} leads but the Lease names ${store.spec?.holderIdentity}`, everLed };
  }
  return { everLed };
}

const microTimeNear = fc.integer({ min: -60_000, max: 60_000 }).map((offset) => new Date(T + offset).toISOString().replace(/Z$/, "000Z"));
const leaseSpec: fc.Arbitrary<LeaseSpec> = fc.record(
  {
    holderIdentity: fc.constantFrom("pod-a", "pod-b", "pod-c", "someone-else", ""),
    leaseDurationSeconds: fc.integer({ min: 1, max: 30 }),
    acquireTime: microTimeNear,
    renewTime: fc.oneof(microTimeNear, fc.constantFrom("", "garbage")),
    leaseTransitions: fc.nat({ max: 100 }),
  },
  { requiredKeys: [] },
);
const election: fc.Arbitrary<Election> = fc.record({
  initial: fc.option(leaseSpec, { nil: undefined }),
  durations: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 2, maxLength: 3 }),
  events: fc.array(fc.record({ who: fc.nat({ max: 2 }), write: fc.boolean(), dt: fc.integer({ min: 0, max: 4_000 }) }), { minLength: 1, maxLength: 80 }),
});

describe("leader election with optimistic concurrency", () => {
  it("never has two leaders with unexpired leases, and the leader is the Lease's holder", () => {
    fc.assert(
      fc.property(election, (e) => {
        expect(runElection(e).violation).toBeUndefined();
      }),
      { numRuns: 1_000 },
    );
  });

  it("elects exactly one of two candidates that keep trying, once a foreign Lease has expired", () => {
    // Both read, then both write, every second: the first writer wins each race and keeps renewing.
    const e: Election = { initial: { holderIdentity: "someone-else", leaseDurationSeconds: 30, renewTime: new Date(T).toISOString() }, durations: [5, 5], events: [] };
    for (let i = 0; i < 40; i++) e.events.push({ who: 0, write: false, dt: 1_000 }, { who: 1, write: false, dt: 0 }, { who: 0, write: true, dt: 0 }, { who: 1, write: true, dt: 0 });
    const result = runElection(e);
    expect(result.violation).toBeUndefined();
    expect([...result.everLed]).toEqual(["pod-a"]);
    const tooEarly = runElection({ ...e, events: e.events.slice(0, 4 * 29) });
    expect(tooEarly.everLed.size).toBe(0);
  });

  it("the check finds two leaders when a candidate ignores an unexpired Lease", () => {
    const ignoreHolders: Decide = (current, identity, now, duration) => leaseDecision(current && { ...current, renewTime: undefined }, identity, now, duration);
    const details = fc.check(fc.property(election, (e) => runElection(e, ignoreHolders).violation === undefined), { numRuns: 1_000 });
    expect(details.failed).toBe(true);
  });

  it("the check finds two leaders when writes do not check the resourceVersion", () => {
    const details = fc.check(fc.property(election, (e) => runElection(e, leaseDecision, false).violation === undefined), { numRuns: 1_000 });
    expect(details.failed).toBe(true);
  });
});
