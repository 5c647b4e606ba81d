import fc from "fast-check";
import jsonPatch from "fast-json-patch";
import type { Operation } from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { bundlePublished, caBundlePatch, type JsonPatchOp, type WebhookConfigurationView } from "../../../src/certs/caBundle.js";

const b64 = (text: string) => Buffer.from(text).toString("base64");

interface Webhook {
  name: string;
  admissionReviewVersions: string[];
  sideEffects: string;
  clientConfig: { service: { namespace: string; name: string; path: string }; caBundle?: string };
  rules: Array<{ operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[] }>;
}

interface Configuration extends WebhookConfigurationView {
  apiVersion: string;
  kind: string;
  metadata: { name: string; resourceVersion: string };
  webhooks: Webhook[];
}

/** What a webhook's caBundle holds when read: nothing yet, the wanted bundle, or something else. */
type Existing = "absent" | "current" | "other" | "current-not-base64" | "current-without-final-newline";

function caBundleOf(existing: Existing, bundle: string, other: string): string | undefined {
  switch (existing) {
    case "absent":
      return undefined;
    case "current":
      return b64(bundle);
    case "other":
      return b64(other);
    case "current-not-base64":
      return bundle;
    case "current-without-final-newline":
      return b64(bundle.trimEnd());
  }
}

const pemLike = fc
  .array(fc.base64String({ minLength: 4, maxLength: 64 }), { minLength: 1, maxLength: 3 })
  .map((bodies) => bodies.map((body) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`).join(""));

const scenario = fc
  .record({
    bundle: pemLike,
    other: pemLike,
    names: fc.uniqueArray(fc.stringMatching(/^[a-z]{1,10}\.appsnapshots\.io$/), { minLength: 0, maxLength: 6 }),
    existing: fc.array(fc.constantFrom<Existing>("absent", "current", "other", "current-not-base64", "current-without-final-newline"), { minLength: 6, maxLength: 6 }),
    resourceVersion: fc.nat().map(String),
  })
  .filter(({ bundle, other }) => bundle !== other)
  .map(({ bundle, other, names, existing, resourceVersion }) => {
    const configuration: Configuration = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: "app-snapshots", resourceVersion },
      webhooks: names.map((name, i) => {
        const caBundle = caBundleOf(existing[i]!, bundle, other);
        return {
          name,
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          clientConfig: { service: { namespace: "app-snapshots", name: "app-snapshots-webhook", path: `/mutate/${i}` }, ...(caBundle === undefined ? {} : { caBundle }) },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
        };
      }),
    };
    return { bundle, configuration, matching: names.map((_, i) => existing[i] === "current") };
  });

/** Applies the patch as the apiserver would: all or nothing, on a copy, with validation. */
function applied<T>(document: T, ops: JsonPatchOp[]): T {
  return jsonPatch.applyPatch(structuredClone(document), ops as Operation[], true, false).newDocument;
}

describe("caBundlePatch", () => {
  it("brings every webhook to the bundle and touches nothing else", () => {
    fc.assert(
      fc.property(scenario, ({ bundle, configuration, matching }) => {
        const before = JSON.stringify(configuration);
        const ops = caBundlePatch(configuration, bundle);
        expect(JSON.stringify(configuration)).toBe(before); // it only reads
        const after = ops ? applied(configuration, ops) : configuration;
        expect(caBundlePatch(after, bundle)).toBeUndefined();
        expect(bundlePublished([after], bundle)).toBe(true);
        expect(after.webhooks.map((w) => w.clientConfig.caBundle)).toEqual(configuration.webhooks.map(() => b64(bundle)));
        expect(JSON.stringify(after.metadata)).toBe(JSON.stringify(configuration.metadata));
        configuration.webhooks.forEach((webhook, i) => {
          const patched = after.webhooks[i]!;
          if (matching[i]) expect(JSON.stringify(patched)).toBe(JSON.stringify(webhook));
          else expect(JSON.stringify({ ...patched, clientConfig: { ...patched.clientConfig, caBundle: undefined } })).toBe(JSON.stringify({ ...webhook, clientConfig: { ...webhook.clientConfig, caBundle: undefined } }));
        });
      }),
      { numRuns: 300 },
    );
  });

  it("is undefined exactly when every webhook already carries the bundle", () => {
    fc.assert(
      fc.property(scenario, ({ bundle, configuration, matching }) => {
        const ops = caBundlePatch(configuration, bundle);
        expect(ops === undefined).toBe(matching.every(Boolean));
        expect(bundlePublished([configuration], bundle)).toBe(matching.every(Boolean));
        // Two operations (guard, write) per webhook that differs, none for the others.
        expect(ops?.length ?? 0).toBe(2 * matching.filter((m) => !m).length);
      }),
      { numRuns: 300 },
    );
  });

  it("fails, instead of writing into the wrong webhook, when the list was reordered after the read", () => {
    const seen = { refused: 0, applied: 0 };
    const reordered = scenario.chain((s) => fc.shuffledSubarray(s.configuration.webhooks, { minLength: s.configuration.webhooks.length }).map((webhooks) => ({ ...s, webhooks })));
    fc.assert(
      fc.property(reordered, ({ bundle, configuration, webhooks }) => {
        const ops = caBundlePatch(configuration, bundle);
        if (!ops) return;
        const guards = ops.filter((op) => op.op === "test");
        const guardFails = guards.some((op) => webhooks[Number(op.path.split("/")[2])]!.name !== op.value);
        const now: Configuration = { ...configuration, webhooks };
        if (guardFails) {
          seen.refused++;
          expect(() => applied(now, ops)).toThrow(expect.objectContaining({ name: "TEST_OPERATION_FAILED" }) as Error);
        } else {
          // Every guarded index still holds the same webhook: the write lands where it was meant to.
          seen.applied++;
          const after = applied(now, ops);
          const targeted = new Set(guards.map((op) => op.value));
          after.webhooks.forEach((webhook, i) => {
            if (targeted.has(webhook.name)) expect(webhook.clientConfig.caBundle).toBe(b64(bundle));
            else expect(webhook).toEqual(webhooks[i]);
          });
        }
      }),
      { numRuns: 300 },
    );
    // Both outcomes were exercised.
    expect(seen.refused).toBeGreaterThan(0);
    expect(seen.applied).toBeGreaterThan(0);
  });

  it("fails when two webhooks that both need the bundle swapped places", () => {
    const webhook = (name: string): Webhook => ({ name, admissionReviewVersions: ["v1"], sideEffects: "None", clientConfig: { service: { namespace: "ns", name: "svc", path: "/" } }, rules: [] });
    const configuration: Configuration = { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", metadata: { name: "v", resourceVersion: "1" }, webhooks: [webhook("a.io"), webhook("b.io")] };
    const ops = caBundlePatch(configuration, "bundle")!;
    expect(ops).toEqual([
      { op: "test", path: "/webhooks/0/name", value: "a.io" },
      { op: "add", path: "/webhooks/0/clientConfig/caBundle", value: b64("bundle") },
      { op: "test", path: "/webhooks/1/name", value: "b.io" },
      { op: "add", path: "/webhooks/1/clientConfig/caBundle", value: b64("bundle") },
    ]);
    expect(() => applied({ ...configuration, webhooks: [webhook("b.io"), webhook("a.io")] }, ops)).toThrow(expect.objectContaining({ name: "TEST_OPERATION_FAILED" }) as Error);
    expect(applied(configuration, ops).webhooks.map((w) => w.clientConfig.caBundle)).toEqual([b64("bundle"), b64("bundle")]);
  });

  it("has nothing to do for a configuration without webhooks", () => {
    expect(caBundlePatch({ metadata: { name: "empty" } }, "bundle")).toBeUndefined();
    expect(caBundlePatch({ metadata: { name: "empty" }, webhooks: [] }, "bundle")).toBeUndefined();
  });
});

describe("bundlePublished", () => {
  it("is true only when every configuration exists and carries the bundle everywhere", () => {
    const many = fc.record({
      scenarios: fc.array(scenario, { minLength: 1, maxLength: 3 }),
      missingAt: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(many, ({ scenarios, missingAt }) => {
        // All configurations are judged against the first scenario's bundle.
        const bundle = scenarios[0]!.bundle;
        const configurations: Array<Configuration | undefined> = scenarios.map((s) => s.configuration);
        const carries = (c: Configuration) => c.webhooks.every((w) => w.clientConfig.caBundle === b64(bundle));
        expect(bundlePublished(configurations, bundle)).toBe(configurations.every((c) => c !== undefined && carries(c)));
        const synced = configurations.map((c) => (c && caBundlePatch(c, bundle) ? applied(c, caBundlePatch(c, bundle)!) : c));
        expect(bundlePublished(synced, bundle)).toBe(true);
        if (missingAt !== undefined) {
          synced.splice(missingAt % (synced.length + 1), 0, undefined);
          expect(bundlePublished(synced, bundle)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("is true for no configurations at all, false for a single missing one", () => {
    expect(bundlePublished([], "bundle")).toBe(true);
    expect(bundlePublished([undefined], "bundle")).toBe(false);
  });
});
