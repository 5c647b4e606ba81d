import { hostname } from "node:os";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { tlsMode } from "../../../src/commands/webhook.js";

type WebhookOptions = Parameters<typeof tlsMode>[0];

/** The flags as commander hands them over with every default in place (registerWebhook's defaults). */
function flags(overrides: Partial<WebhookOptions> = {}): WebhookOptions {
  return {
    certDns: [],
    certIp: [],
    leaseDuration: "15s",
    mutatingWebhookConfiguration: [],
    validatingWebhookConfiguration: [],
    caLifetime: "8760h",
    certLifetime: "168h",
    caPublishDelay: "10s",
    host: "127.0.0.1",
    port: "8443",
    healthPort: "8080",
    drainDelay: "3000",
    state: [],
    ...overrides,
  };
}

/** A complete, valid --tls-secret invocation; tests change one thing at a time. */
const secretFlags = (overrides: Partial<WebhookOptions> = {}) => flags({ tlsSecret: "webhook-tls", certDns: ["app-snapshots-webhook.app-snapshots.svc"], ...overrides });

function secretMode(options: WebhookOptions, namespace = "app-snapshots") {
  const mode = tlsMode(options, namespace);
  if (mode.mode !== "secret") throw new Error(`expected self-managed mode, got ${mode.mode}`);
  return mode.options;
}

/** The Lease timing, every field present (NaN for a missing one makes any comparison fail). */
function leaseOf(options: WebhookOptions) {
  const { lease } = secretMode(options);
  return { durationSeconds: lease?.durationSeconds ?? NaN, renewDeadlineMs: lease?.renewDeadlineMs ?? NaN, retryPeriodMs: lease?.retryPeriodMs ?? NaN };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("tlsMode with certificate files", () => {
  it("serves the given files and needs neither a namespace nor names", () => {
    expect(tlsMode(flags({ tlsCert: "/tls/tls.crt", tlsKey: "/tls/tls.key" }), undefined)).toEqual({ mode: "files", certFile: "/tls/tls.crt", keyFile: "/tls/tls.key" });
  });

  it.each([
    ["only --tls-cert", { tlsCert: "/tls/tls.crt" }],
    ["only --tls-key", { tlsKey: "/tls/tls.key" }],
    ["an empty --tls-cert", { tlsCert: "", tlsKey: "/tls/tls.key" }],
    ["an empty --tls-key", { tlsCert: "/tls/tls.crt", tlsKey: "" }],
  ])("refuses %s", (_name, overrides) => {
    expect(() => tlsMode(flags(overrides), "app-snapshots")).toThrow("--tls-cert and --tls-key go together");
  });

  it.each([
    ["both files", { tlsCert: "/tls/tls.crt", tlsKey: "/tls/tls.key" }],
    ["only the certificate", { tlsCert: "/tls/tls.crt" }],
    ["only the key", { tlsKey: "/tls/tls.key" }],
  ])("refuses --tls-secret together with %s", (_name, overrides) => {
    expect(() => tlsMode(secretFlags(overrides), "app-snapshots")).toThrow("give either --tls-cert/--tls-key or --tls-secret, not both");
  });

  it("refuses to start without any certificate source", () => {
    expect(() => tlsMode(flags(), "app-snapshots")).toThrow("no serving certificate: give --tls-cert and --tls-key, or --tls-secret for self-managed certificates");
    expect(() => tlsMode(flags({ tlsSecret: "" }), "app-snapshots")).toThrow("no serving certificate");
  });
});

describe("tlsMode with a self-managed Secret: refusals", () => {
  it("needs the namespace", () => {
    for (const namespace of [undefined, ""]) {
      expect(() => tlsMode(secretFlags(), namespace)).toThrow("--tls-secret needs the webhook's namespace: give --namespace or set POD_NAMESPACE");
    }
  });

  it("needs at least one name for the certificate", () => {
    expect(() => tlsMode(secretFlags({ certDns: [] }), "app-snapshots")).toThrow("--tls-secret needs the certificate's names: give --cert-dns and/or --cert-ip");
    expect(() => tlsMode(secretFlags({ certDns: [], certIp: ["10.0.0.7"] }), "app-snapshots")).not.toThrow();
  });

  it.each([
    ["caLifetime", "--ca-lifetime"],
    ["certLifetime", "--cert-lifetime"],
    ["leaseDuration", "--lease-duration"],
    ["caPublishDelay", "--ca-publish-delay"],
  ] as const)("names %s (%s) when it is not a Go duration", (field, flag) => {
    for (const text of ["ten seconds", "10", "-10s", "1d"]) {
      expect(() => tlsMode(secretFlags({ [field]: text }), "app-snapshots")).toThrow(`${flag} "${text}" is not a Go duration like 2m`);
    }
  });

  it("refuses a serving certificate shorter than 3s, at the millisecond", () => {
    expect(() => tlsMode(secretFlags({ certLifetime: "2999ms", caLifetime: "1m" }), "app-snapshots")).toThrow("--cert-lifetime must be at least 3s");
    expect(() => tlsMode(secretFlags({ certLifetime: "0", caLifetime: "1m" }), "app-snapshots")).toThrow("--cert-lifetime must be at least 3s");
    expect(secretMode(secretFlags({ certLifetime: "3s", caLifetime: "1m", caPublishDelay: "1s" })).settings.certLifetimeMs).toBe(3_000);
  });

  it("refuses a CA that would not outlive one serving certificate", () => {
    expect(() => tlsMode(secretFlags({ certLifetime: "1h", caLifetime: "59m59s" }), "app-snapshots")).toThrow("--ca-lifetime must be at least --cert-lifetime");
    const equal = secretMode(secretFlags({ certLifetime: "1h", caLifetime: "60m" })).settings;
    expect(equal.caLifetimeMs).toBe(equal.certLifetimeMs);
  });

  it("refuses a publish delay the old CA's serving certificate might not outlast after a rotation", () => {
    // The window is min(cert, CA/3): 1h here, so the delay may be at most 20m.
    expect(secretMode(secretFlags({ certLifetime: "2h", caLifetime: "3h", caPublishDelay: "20m" })).settings.publishDelayMs).toBe(1_200_000);
    expect(() => tlsMode(secretFlags({ certLifetime: "2h", caLifetime: "3h", caPublishDelay: "20m1s" }), "app-snapshots")).toThrow("--ca-publish-delay must be at most a third");
    expect(() => tlsMode(secretFlags({ certLifetime: "30s", caLifetime: "90s", caPublishDelay: "10s1ms" }), "app-snapshots")).toThrow("--ca-publish-delay must be at most a third");
    expect(secretMode(secretFlags({ certLifetime: "30s", caLifetime: "90s", caPublishDelay: "10s" })).settings.publishDelayMs).toBe(10_000);
  });

  it("refuses SAN values a certificate cannot carry or that would never match", () => {
    for (const name of ["bücher.example", "-a.svc", "a..svc", "a_b.svc", `${"x".repeat(64)}.svc`, "a.svc.", ""]) {
      expect(() => tlsMode(secretFlags({ certDns: [name] }), "app-snapshots"), name).toThrow(`--cert-dns "${name}" is not a DNS name`);
    }
    for (const ip of ["::ffff:10.0.0.1", "10.0.0.256", "localhost", "1.2.3"]) {
      expect(() => tlsMode(secretFlags({ certIp: [ip] }), "app-snapshots"), ip).toThrow(`--cert-ip "${ip}" is not an IPv4 or plain IPv6 address`);
    }
    expect(secretMode(secretFlags({ certDns: ["xn--bcher-kva.example", "A-1.b"], certIp: ["fe80::1", "0.0.0.0"] })).settings.dnsNames).toEqual(["xn--bcher-kva.example", "A-1.b"]);
  });

  it("refuses a lease shorter than 2s, at the millisecond", () => {
    expect(() => tlsMode(secretFlags({ leaseDuration: "1999ms" }), "app-snapshots")).toThrow("--lease-duration must be at least 2s");
    expect(leaseOf(secretFlags({ leaseDuration: "2s" })).durationSeconds).toBe(2);
  });
});

describe("tlsMode with a self-managed Secret: the options it builds", () => {
  it("derives the Lease name from the Secret unless --lease is given", () => {
    expect(secretMode(secretFlags({ tlsSecret: "my-tls" })).leaseName).toBe("my-tls-leader");
    expect(secretMode(secretFlags({ tlsSecret: "my-tls", lease: "custom-lease" })).leaseName).toBe("custom-lease");
  });

  it("passes namespace, Secret, names, lifetimes and the publish delay through", () => {
    const options = secretMode(
      secretFlags({ tlsSecret: "tls", certDns: ["a.ns.svc", "a.ns.svc.cluster.local"], certIp: ["10.0.0.7", "::1"], caLifetime: "720h", certLifetime: "24h", caPublishDelay: "1m30s" }),
      "backup-system",
    );
    expect(options.namespace).toBe("backup-system");
    expect(options.secretName).toBe("tls");
    expect(options.settings).toEqual({ caLifetimeMs: 720 * 3_600_000, certLifetimeMs: 24 * 3_600_000, dnsNames: ["a.ns.svc", "a.ns.svc.cluster.local"], ipAddresses: ["10.0.0.7", "::1"], publishDelayMs: 90_000 });
  });

  it("refers to every configuration by kind, mutating ones first, in flag order", () => {
    const options = secretMode(secretFlags({ mutatingWebhookConfiguration: ["m1", "m2"], validatingWebhookConfiguration: ["v1"] }));
    expect(options.webhookConfigurations).toEqual([
      { kind: "MutatingWebhookConfiguration", name: "m1" },
      { kind: "MutatingWebhookConfiguration", name: "m2" },
      { kind: "ValidatingWebhookConfiguration", name: "v1" },
    ]);
    expect(secretMode(secretFlags()).webhookConfigurations).toEqual([]);
  });

  it("uses client-go's lease proportions for the default 15s", () => {
    expect(secretMode(secretFlags()).lease).toEqual({ durationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it("keeps the lease proportions for any duration: retry < renew deadline < lease, whole seconds rounded up", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2_000, max: 3_600_000 }), (leaseMs) => {
        const lease = leaseOf(secretFlags({ leaseDuration: `${leaseMs}ms` }));
        expect(lease.durationSeconds).toBe(Math.ceil(leaseMs / 1000));
        expect(lease.durationSeconds * 1000).toBeGreaterThanOrEqual(leaseMs);
        expect(lease.renewDeadlineMs).toBeCloseTo((leaseMs * 2) / 3, 6);
        expect(lease.retryPeriodMs).toBeCloseTo((leaseMs * 2) / 15, 6);
        expect(lease.retryPeriodMs).toBeLessThan(lease.renewDeadlineMs);
        expect(lease.renewDeadlineMs).toBeLessThan(lease.durationSeconds * 1000);
      }),
      { numRuns: 200 },
    );
  });

  it("identifies the replica by POD_NAME when it is set", () => {
    vi.stubEnv("POD_NAME", "app-snapshots-webhook-7d9f8-x2x4q");
    expect(secretMode(secretFlags()).identity).toBe("app-snapshots-webhook-7d9f8-x2x4q");
  });

  it("identifies the replica by host name and process id without POD_NAME, or with an empty one (which would read as a released Lease)", () => {
    vi.stubEnv("POD_NAME", undefined);
    expect(process.env.POD_NAME).toBeUndefined();
    expect(secretMode(secretFlags()).identity).toBe(`${hostname()}-${process.pid}`);
    vi.stubEnv("POD_NAME", "");
    expect(secretMode(secretFlags()).identity).toBe(`${hostname()}-${process.pid}`);
  });
});

describe("tlsMode: the storage certificate from the self-managed CA", () => {
  const storageFlags = (overrides: Partial<WebhookOptions> = {}) =>
    secretFlags({ storageTlsSecret: "storage-tls", storageCertDns: ["backups-storage.app-snapshots.svc"], storageCertIp: [], storageCertLifetime: "168h", ...overrides });
  const storageOf = (options: WebhookOptions) => {
    const mode = tlsMode(options, "app-snapshots");
    if (mode.mode !== "secret") throw new Error("not self-managed");
    return mode.storage;
  };

  it("is off without --storage-tls-secret, and carries names, lifetime, publish delay and the location when given", () => {
    expect(storageOf(secretFlags())).toBeUndefined();
    expect(storageOf(storageFlags({ storageCertIp: ["10.96.0.9"], storageBackupLocation: "velero/backups" }))).toEqual({
      namespace: "app-snapshots",
      secretName: "storage-tls",
      settings: { dnsNames: ["backups-storage.app-snapshots.svc"], ipAddresses: ["10.96.0.9"], certLifetimeMs: 168 * 3_600_000, publishDelayMs: 10_000 },
      location: { namespace: "velero", name: "backups" },
    });
  });

  it.each([
    ["storage flags without --storage-tls-secret", secretFlags({ storageCertDns: ["x"] }), "--storage-cert-dns, --storage-cert-ip and --storage-backup-location need --storage-tls-secret"],
    ["no names", storageFlags({ storageCertDns: [] }), "--storage-tls-secret needs the certificate's names: give --storage-cert-dns and/or --storage-cert-ip"],
    ["a bad name", storageFlags({ storageCertDns: ["not a name"] }), '--storage-cert-dns "not a name" is not a DNS name'],
    ["a bad address", storageFlags({ storageCertIp: ["10.0.0"] }), '--storage-cert-ip "10.0.0" is not an IPv4 or plain IPv6 address'],
    ["the webhook's own Secret", storageFlags({ storageTlsSecret: "webhook-tls" }), "--storage-tls-secret must differ from --tls-secret"],
    ["a lifetime beyond the CA's", storageFlags({ storageCertLifetime: "8761h" }), "--storage-cert-lifetime must be at most --ca-lifetime"],
    ["a lifetime the publish delay does not fit", storageFlags({ storageCertLifetime: "29s" }), "--ca-publish-delay must be at most a third of --storage-cert-lifetime"],
    ["a location without a namespace", storageFlags({ storageBackupLocation: "backups" }), '--storage-backup-location "backups" is not <namespace>/<name>'],
    ["certificate files", flags({ tlsCert: "/a", tlsKey: "/b", storageTlsSecret: "storage-tls" }), "--storage-tls-secret needs --tls-secret"],
  ])("refuses %s", (_name, options, message) => {
    expect(() => tlsMode(options, "app-snapshots")).toThrow(message);
  });
});
