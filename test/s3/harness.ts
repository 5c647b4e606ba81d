import { S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, issueCertificate, type KeyPair } from "../../src/certs/authority.js";
import { parseCredentials } from "../../src/s3/credentials.js";
import { MultipartUploads } from "../../src/s3/multipart.js";
import { S3_MAX_HEADER_BYTES, s3Handler, type S3ServerOptions } from "../../src/s3/server.js";
import { StoreBackend } from "../../src/s3/storeBackend.js";
import { listen, type RunningServer } from "../../src/server/http.js";
import { createLogger } from "../../src/server/logger.js";
import { createMetricsRegistry } from "../../src/server/metrics.js";
import { createStorageMetrics } from "../../src/storage/metrics.js";
import { ObjectStore } from "../../src/storage/store.js";

/** The key pair every S3 test signs with. */
export const ACCESS_KEY = "AKIAAPPSNAPSHOTSTEST";
export const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/app-snapshots-test-key";
export const CREDENTIALS_FILE_TEXT = `[default]\naws_access_key_id = ${ACCESS_KEY}\naws_secret_access_key = ${SECRET_KEY}\n`;

export interface S3TestServer {
  url: string;
  port: number;
  /** host:port as clients send it in Host. */
  host: string;
  root: string;
  work: string;
  store: ObjectStore;
  uploads: MultipartUploads;
  server: RunningServer;
  /** The CA that signed the TLS certificate (https servers only). */
  ca?: KeyPair;
  close(): Promise<void>;
}

export interface StartOptions {
  tls?: boolean;
  /** Buckets to create before serving. */
  buckets?: string[];
  now?: () => Date;
  idleTimeoutMs?: number;
  minPartBytes?: number;
  /** The store's object size limit (default: S3's 5 GiB). */
  maxObjectBytes?: number;
  overrides?: Partial<S3ServerOptions>;
}

/** An S3 endpoint on 127.0.0.1 over a fresh temp root, in this process (so tests can inject a clock). */
export async function startS3(options: StartOptions = {}): Promise<S3TestServer> {
  const work = mkdtempSync(join(tmpdir(), "app-snapshots-s3-"));
  const root = join(work, "root");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(root);
  const log = createLogger({ level: process.env.S3_TEST_LOG === "1" ? "debug" : "silent" });
  const store = await ObjectStore.open(root, { log, maxObjectBytes: options.maxObjectBytes });
  for (const bucket of options.buckets ?? []) await store.createBucket(bucket);
  const uploads = await MultipartUploads.open(store, { hashPool: store.hashPool, durability: "full", log, minPartBytes: options.minPartBytes });
  const metrics = createStorageMetrics(createMetricsRegistry());
  let ca: KeyPair | undefined;
  let tls: { cert: string; key: string } | undefined;
  if (options.tls) {
    ca = createCa({ commonName: "app-snapshots test CA" });
    const leaf = issueCertificate(ca, { commonName: "127.0.0.1", ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"], usage: "server" });
    tls = { cert: leaf.certPem, key: leaf.keyPem };
    writeFileSync(join(work, "ca.pem"), ca.certPem);
  }
  const credentials = parseCredentials(CREDENTIALS_FILE_TEXT);
  const handler = s3Handler({
    backend: new StoreBackend(store, uploads),
    credentials: () => credentials,
    log,
    metrics,
    domains: [],
    region: "",
    allowBucketChanges: true,
    now: options.now,
    ...options.overrides,
  });
  const server = await listen({ handler, port: 0, tls, idleTimeoutMs: options.idleTimeoutMs ?? 120_000, requestTimeoutMs: 0, deferContinue: true, maxHeaderSize: S3_MAX_HEADER_BYTES });
  return {
    url: server.url,
    port: server.port,
    host: `127.0.0.1:${server.port}`,
    root,
    work,
    store,
    uploads,
    server,
    ca,
    async close() {
      await server.close(1000);
      await uploads.close();
      await store.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** The AWS SDK as the S3 suites use it against `s3`: path-style, the test credentials, no retries (a retry would hide an error). */
export function sdkFor(s3: S3TestServer): S3Client {
  return new S3Client({ endpoint: s3.url, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, maxAttempts: 1 });
}
