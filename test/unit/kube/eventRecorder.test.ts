import { Writable } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { WarningOccurrence } from "../../../src/admission/warningEvents.js";
import { EventRecorder, eventName, type EventSeries, type EventSink, type KubeEvent } from "../../../src/kube/eventRecorder.js";
import { createLogger } from "../../../src/server/logger.js";

const WINDOW = 10 * 60_000;

/** A sink that remembers Events like the apiserver (409 on a second create of a name, 404 once deleted). */
class FakeSink implements EventSink {
  readonly stored = new Map<string, KubeEvent>();
  readonly calls: string[] = [];
  fail: Error | undefined;
  hang = false;
  /** While set, calls wait for it. */
  held: Promise<void> | undefined;
  async create(event: KubeEvent): Promise<"created" | "exists"> {
    this.calls.push(`create ${event.metadata.name}`);
    await this.gate();
    if (this.stored.has(event.metadata.name)) return "exists";
    this.stored.set(event.metadata.name, structuredClone(event));
    return "created";
  }
  async patchSeries(_namespace: string, name: string, series: EventSeries): Promise<"patched" | "gone"> {
    this.calls.push(`patch ${name} ${series.count}`);
    await this.gate();
    const event = this.stored.get(name);
    if (!event) return "gone";
    event.series = series;
    return "patched";
  }
  private async gate(): Promise<void> {
    if (this.hang) await new Promise(() => undefined);
    if (this.held) await this.held;
    if (this.fail) throw this.fail;
  }
}

function setup(options: { maxEntries?: number; timeoutMs?: number; maxInFlight?: number } = {}) {
  let now = Date.UTC(2026, 11, 2, 13, 0, 0);
  const lines: Array<{ level: number; msg: string; object?: string; err?: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  });
  const sink = new FakeSink();
  const results: string[] = [];
  const recorder = new EventRecorder({
    sink,
    log: createLogger({ level: "debug", pretty: false, destination }),
    reportingController: "appsnapshots.io/webhook",
    reportingInstance: "app-snapshots-webhook-6d5f-abcde",
    now: () => now,
    windowMs: WINDOW,
    onWrite: (r) => results.push(r),
    ...options,
  });
  return {
    recorder,
    sink,
    results,
    infos: () => lines.filter((l) => l.level === 30).map((l) => `${l.object}: ${l.msg}`),
    warns: () => lines.filter((l) => l.level === 40),
    advance: (ms: number) => (now += ms),
    /** Lets the background writes run to completion. */
    settle: () => new Promise((resolve) => setTimeout(resolve, 0)),
  };
}

const occurrence = (note: string, name = "web", uid?: string): WarningOccurrence => ({
  namespace: "shop",
  regarding: { apiVersion: "apps/v1", kind: "Deployment", name, namespace: "shop", ...(uid ? { uid } : {}) },
  subject: `Deployment/${name}`,
  reason: "BackupAnnotations",
  action: "Admit",
  note,
});

describe("EventRecorder", () => {
  it("creates one Warning Event per (workload, text) and logs the text once", async () => {
    const t = setup();
    t.recorder.record(occurrence("hook command is not a JSON array"));
    await t.settle();
    expect([...t.sink.stored.values()]).toEqual([
      {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name: eventName(occurrence("hook command is not a JSON array")), namespace: "shop" },
        eventTime: "2026-12-02T13:00:00.000000Z",
        reportingController: "appsnapshots.io/webhook",
        reportingInstance: "app-snapshots-webhook-6d5f-abcde",
        action: "Admit",
        reason: "BackupAnnotations",
        regarding: { apiVersion: "apps/v1", kind: "Deployment", name: "web", namespace: "shop" },
        note: "hook command is not a JSON array",
        type: "Warning",
      },
    ]);
    expect(t.infos()).toEqual(["Deployment/web: hook command is not a JSON array"]);
    expect(t.results).toEqual(["created"]);
  });

  it("counts repeats within the window without a call or a log line, and writes the count into the series once the window has passed", async () => {
    const t = setup();
    t.recorder.record(occurrence("a"));
    await t.settle();
    for (let i = 0; i < 5; i++) {
      t.advance(60_000);
      t.recorder.record(occurrence("a"));
    }
    await t.recorder.flush();
    expect(t.sink.calls).toHaveLength(1);
    expect(t.infos()).toHaveLength(1);

    t.advance(WINDOW - 5 * 60_000);
    await t.recorder.flush();
    const name = eventName(occurrence("a"))!;
    expect(t.sink.calls).toEqual([`create ${name}`, `patch ${name} 6`]);
    expect(t.sink.stored.get(name)?.series).toEqual({ count: 6, lastObservedTime: "2026-12-02T13:05:00.000000Z" });
    expect(t.sink.stored.size).toBe(1);

    // Nothing new: no call. A repeat after another window: one more patch and one more log line.
    t.advance(WINDOW);
    await t.recorder.flush();
    expect(t.sink.calls).toHaveLength(2);
    t.recorder.record(occurrence("a"));
    await t.settle();
    expect(t.sink.calls.at(-1)).toBe(`patch ${name} 7`);
    expect(t.infos()).toHaveLength(2);
    expect(t.results).toEqual(["created", "updated", "updated"]);
  });

  it("keeps distinct texts and distinct workloads apart", async () => {
    const t = setup();
    t.recorder.record(occurrence("a", "web"));
    t.recorder.record(occurrence("b", "web"));
    t.recorder.record(occurrence("a", "api"));
    t.recorder.record(occurrence("a", "web"));
    await t.settle();
    expect(t.sink.stored.size).toBe(3);
    expect(t.infos()).toEqual(["Deployment/web: a", "Deployment/web: b", "Deployment/api: a"]);
  });

  it("leaves an Event another replica created to it (AlreadyExists): no duplicate, no series overwrite", async () => {
    const t = setup();
    const other = setup();
    other.recorder.record(occurrence("a"));
    await other.settle();
    for (const [name, event] of other.sink.stored) t.sink.stored.set(name, event);

    t.recorder.record(occurrence("a"));
    t.recorder.record(occurrence("a"));
    await t.settle();
    t.advance(WINDOW);
    await t.recorder.flush();
    const name = eventName(occurrence("a"))!;
    // One create per window at most, never a patch of the other replica's series.
    expect(t.sink.calls).toEqual([`create ${name}`, `create ${name}`]);
    expect(t.sink.stored.get(name)?.series).toBeUndefined();
    expect(t.results).toEqual(["exists", "exists"]);
  });

  it("creates the Event again, with the count, when the apiserver has expired it", async () => {
    const t = setup();
    t.recorder.record(occurrence("a"));
    await t.settle();
    t.sink.stored.clear();
    t.advance(WINDOW);
    t.recorder.record(occurrence("a"));
    await t.settle();
    const name = eventName(occurrence("a"))!;
    expect(t.sink.calls).toEqual([`create ${name}`, `patch ${name} 2`, `create ${name}`]);
    expect(t.sink.stored.get(name)?.series).toEqual({ count: 2, lastObservedTime: "2026-12-02T13:10:00.000000Z" });
  });

  it("never throws into the caller: a failing API is logged at warn and retried after a window, not per pod", async () => {
    const t = setup();
    t.sink.fail = new Error('events.events.k8s.io is forbidden: User "system:serviceaccount:x:y" cannot create resource');
    for (let i = 0; i < 50; i++) expect(() => t.recorder.record(occurrence("a"))).not.toThrow();
    await t.settle();
    expect(t.sink.calls).toHaveLength(1);
    expect(t.warns()).toHaveLength(1);
    expect(t.warns()[0]!.err).toContain("forbidden");
    t.sink.fail = undefined;
    t.advance(WINDOW);
    await t.recorder.flush();
    expect(t.sink.stored.get(eventName(occurrence("a"))!)?.series?.count).toBe(50);
    expect(t.results).toEqual(["failed", "created"]);
  });

  it("abandons a call that does not answer, and record() still returns at once", async () => {
    const t = setup({ timeoutMs: 20 });
    t.sink.hang = true;
    t.recorder.record(occurrence("a"));
    expect(t.sink.calls).toHaveLength(1);
    await expect.poll(() => t.results, { timeout: 2_000 }).toEqual(["failed"]);
    expect(t.warns()[0]!.err).toBe("no answer within 20 ms");
  });

  it("keeps at most maxInFlight writes under way; the others follow as slots free", async () => {
    const t = setup({ maxInFlight: 2 });
    let release: () => void = () => undefined;
    t.sink.held = new Promise((resolve) => (release = resolve));
    for (const note of ["a", "b", "c", "d", "e"]) t.recorder.record(occurrence(note));
    expect(t.sink.calls).toHaveLength(2);
    release();
    t.sink.held = undefined;
    await t.settle();
    expect(t.sink.calls).toHaveLength(5);
    expect(t.sink.stored.size).toBe(5);
    expect(t.results).toEqual(["created", "created", "created", "created", "created"]);
  });

  it("logs a bare pod's warning without writing an Event", async () => {
    const t = setup();
    t.recorder.record({ namespace: "shop", subject: "Pod/debug", reason: "BackupAnnotations", action: "Admit", note: "a" });
    t.recorder.record({ namespace: "shop", subject: "Pod/debug", reason: "BackupAnnotations", action: "Admit", note: "a" });
    await t.recorder.flush();
    expect(t.sink.calls).toEqual([]);
    expect(t.infos()).toEqual(["Pod/debug: a"]);
  });

  it("remembers at most maxEntries pairs, forgetting the least recently seen, and forgets idle ones", async () => {
    const t = setup({ maxEntries: 3 });
    for (const note of ["a", "b", "c", "a", "d"]) t.recorder.record(occurrence(note));
    await t.settle();
    expect(t.recorder.size).toBe(3);
    // "b" was the least recently seen: seen again, it is new (logged again); "a" is still remembered.
    t.recorder.record(occurrence("a"));
    t.recorder.record(occurrence("b"));
    expect(t.infos()).toEqual(["Deployment/web: a", "Deployment/web: b", "Deployment/web: c", "Deployment/web: d", "Deployment/web: b"]);
    await t.settle();
    t.advance(7 * WINDOW);
    await t.recorder.flush(); // writes the pending counts
    await t.recorder.flush(); // then forgets the idle entries
    expect(t.recorder.size).toBe(0);
  });

  it("names Events as valid DNS subdomains, the same for the same workload and text", () => {
    const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,300}[a-z0-9])?$/), fc.string(), (name, note) => {
        fc.pre(!/\.\.|\.-|-\./.test(name));
        const event = eventName(occurrence(note, name))!;
        expect(event.length).toBeLessThanOrEqual(253);
        expect(event).toMatch(dns);
        expect(eventName(occurrence(note, name))).toBe(event);
      }),
    );
    expect(eventName(occurrence("a", "web"))).not.toBe(eventName(occurrence("b", "web")));
    expect(eventName(occurrence("a", "web", "uid-1"))).not.toBe(eventName(occurrence("a", "web", "uid-2")));
  });

  it("cuts a note to the 1024 bytes the apiserver accepts, on a character boundary", async () => {
    const t = setup();
    t.recorder.record(occurrence("é".repeat(2000)));
    await t.settle();
    const note = [...t.sink.stored.values()][0]!.note;
    expect(Buffer.byteLength(note)).toBeLessThanOrEqual(1024);
    expect(note).toMatch(/^é+\.\.\.$/);
  });
});
