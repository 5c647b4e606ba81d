import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { Command } from "commander";
import { serveHealth } from "../server/health.js";
import { hostForUrl, type RunningServer, type TlsMaterial } from "../server/http.js";
import { Lifecycle } from "../server/lifecycle.js";
import { createLogger, type Logger } from "../server/logger.js";
import { createMetricsRegistry } from "../server/metrics.js";
import { readTlsFiles, watchTlsFiles } from "../server/tlsFiles.js";
import { StorageError } from "../storage/errors.js";
import { listenAt, parseListenAddress } from "../server/listenAddress.js";
import { lvpIssuedHosts } from "../storage/lvpIssuedHosts.js";
import { lvpHandler } from "../storage/lvpServer.js";
import { LVP_PORT, signLvpUrl } from "../storage/lvpSignature.js";
import { createStorageMetrics } from "../storage/metrics.js";
import { loadKubeConfig } from "../kube/loadConfig.js";
import { keyFromEnv, keyFromFile, keyFromSecret, type SigningKeySource } from "../storage/signingKeys.js";
import { ObjectStore, type Durability } from "../storage/store.js";
import { parseCredentials, watchCredentials } from "../s3/credentials.js";
import { MultipartUploads } from "../s3/multipart.js";
import { DEFAULT_MAX_UPLOADS, S3_MAX_HEADER_BYTES, s3Handler } from "../s3/server.js";
import { MAX_PRESIGNED_SECONDS, presignGet } from "../s3/sigv4.js";
import { StoreBackend } from "../s3/storeBackend.js";
import { parseGoDuration } from "../velero/duration.js";
import { collect, durationMs } from "./options.js";

/** LVP's mount point, which its sidecar uses when MOUNT_POINT is unset. */
const LVP_DEFAULT_ROOT = "/var/velero-local-volume-provider";
const SIGNING_KEY_ENV = "LVP_SIGNING_KEY";

interface KeyOptions {
  lvpSigningKeyFile?: string;
  veleroNamespace?: string;
  kubeconfig?: string;
}

interface ServeOptions extends KeyOptions {
  root?: string;
  lvpListen?: string;
  s3Listen?: string;
  credentials?: string;
  s3Domain?: string[];
  region: string;
  bucketChanges: boolean;
  s3IdleTimeout: string;
  s3RequestTimeout: string;
  multipartMaxAge: string;
  maxUploads: string;
  publicUrl?: string;
  healthListen: string;
  durability: string;
  shared?: boolean;
  readOnly?: boolean;
  lvpIssuedHost?: string[];
  tlsCert?: string;
  tlsKey?: string;
  lvpPlainHttp?: boolean;
  drainDelay: string;
  bucket?: string[];
}

interface SignOptions extends KeyOptions {
  ttl: string;
  baseUrl?: string;
  credentials?: string;
  accessKey?: string;
  publicUrl?: string;
  region: string;
}


function addKeyOptions(command: Command): Command {
  return command
    .option("--lvp-signing-key-file <file>", `raw signing key bytes (a mounted Secret); else $${SIGNING_KEY_ENV} (base64); else Secret lvp-signingsecret in the Velero namespace`)
    .option("--velero-namespace <name>", "namespace of Velero and of Secret lvp-signingsecret (default: $VELERO_NAMESPACE, then velero)")
    .option("--kubeconfig <file>", "kubeconfig for reading the Secret (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)");
}

/** The signing key from the first source configured: file, environment, then the Kubernetes Secret. */
async function keySource(options: KeyOptions): Promise<SigningKeySource> {
  if (options.lvpSigningKeyFile) return keyFromFile(options.lvpSigningKeyFile);
  const env = process.env[SIGNING_KEY_ENV];
  if (env) return keyFromEnv(SIGNING_KEY_ENV, env);
  return keyFromSecret(await loadKubeConfig(options.kubeconfig), options.veleroNamespace ?? process.env.VELERO_NAMESPACE ?? "velero");
}

export function registerStorage(program: Command): void {
  // Options after `sign` belong to sign, though storage has options of the same names.
  program.enablePositionalOptions();
  const storage = addKeyOptions(
    program
      .command("storage")
      .enablePositionalOptions()
      .description("serve a folder (NFS, hostPath or PVC mount) as backup storage; --lvp-listen is a drop-in for local-volume-provider's file server")
      .option("--root <dir>", "the store root: buckets are its folders (default: $MOUNT_POINT, then LVP's /var/velero-local-volume-provider)")
      .option("--lvp-listen <[host]:port>", `serve LVP signed download URLs (GET/HEAD, Range) here, e.g. :${LVP_PORT}`)
      .option("--s3-listen <[host]:port>", "serve the S3-compatible API here, e.g. :9000 (needs --credentials)")
      .option("--credentials <file>", "S3 key pairs: an AWS shared-credentials file (the BSL's cloud file works); reloaded on change")
      .option("--public-url <url>", "the S3 endpoint as clients outside the cluster reach it (Velero's publicUrl): its presigned URLs verify even when an ingress rewrites Host")
      .option("--s3-domain <domain>", "virtual-host style for Hosts <bucket>.<domain>; repeatable (path style always works)", collect)
      .option("--region <name>", "the region GetBucketLocation reports (requests signed for any region are accepted)", "us-east-1")
      .option("--bucket <name>", "create this bucket (a top-level folder) at start-up if it is missing; repeatable", collect)
      .option("--no-bucket-changes", "refuse CreateBucket and DeleteBucket (buckets are folders an admin creates)")
      .option("--s3-idle-timeout <duration>", "cut a connection that stalls this long mid-request (Go duration)", "2m")
      .option("--s3-request-timeout <duration>", "the longest a request (a 5 GiB upload included) may take (Go duration)", "1h")
      .option("--max-uploads <n>", "uploads written at once; more get 503 SlowDown, which S3 clients retry (bounds memory)", String(DEFAULT_MAX_UPLOADS))
      .option("--multipart-max-age <duration>", "abort multipart uploads idle this long (Go duration)", "24h")
      .option("--lvp-issued-host <host:port>", "a host:port signed URLs may name besides the request's Host; repeatable (default: $POD_IP:3000, what LVP puts in its URLs, or every non-loopback address:3000 without POD_IP)", collect)
      .option("--health-listen <[host]:port>", "plain-HTTP /healthz, /readyz, /metrics, or none", "127.0.0.1:8080")
      .option("--durability <mode>", "full: fsync before acknowledging a write; none: skip fsync (benchmarks only)", "full")
      .option("--shared", "several replicas share the root (RWX volume): only reclaim temp files of instances that stopped")
      .option("--read-only", "never write to the root (no temp-file reclaim, no metadata sweep)")
      .option("--tls-cert <file>", "serve the S3 and LVP ports over TLS with this certificate (reloaded on change)")
      .option("--tls-key <file>", "key for --tls-cert")
      .option("--lvp-plain-http", "with --tls-cert: keep the LVP port plain HTTP (local-volume-provider builds http:// URLs to its file server) while S3 serves TLS")
      .option("--drain-delay <ms>", "time between turning unready and closing listeners on SIGTERM", "3000"),
  ).action(async (options: ServeOptions) => {
    widenThreadPool();
    await serveStorage(options);
  });

  addKeyOptions(
    storage
      .command("sign")
      .argument("<url>", "the object, as s3://bucket/key")
      .description("print a signed download URL for an object: SigV4 presigned (with --credentials, for --s3-listen) or LVP format (for --lvp-listen)")
      .option("--ttl <duration>", "how long the URL stays valid (Go duration)", "10m")
      .option("--credentials <file>", "mint a SigV4 presigned URL with a key pair from this AWS credentials file")
      .option("--access-key <id>", "which access key of --credentials signs (default: the first)")
      .option("--public-url <url>", "with --credentials: the S3 endpoint as clients reach it, e.g. https://backups.example.com")
      .option("--region <name>", "with --credentials: the region to sign for", "us-east-1")
      .option("--base-url <url>", `LVP format: scheme://host[:port] the URL points at (default: http://$POD_IP:${LVP_PORT}, like LVP)`),
  ).action(async (url: string, options: SignOptions) => {
    const object = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
    if (!object) throw new Error(`"${url}" is not s3://bucket/key`);
    const ttlNs = parseGoDuration(options.ttl);
    if (ttlNs === undefined || ttlNs <= 0) throw new Error(`--ttl "${options.ttl}" is not a positive Go duration like 10m`);
    // One bound for both formats: a leaked link stops working within a week (SigV4's own maximum).
    if (ttlNs / 1e9 > MAX_PRESIGNED_SECONDS) throw new Error(`--ttl "${options.ttl}" is longer than 168h: signed links live at most a week`);
    if (options.credentials) {
      process.stdout.write(`${await presignFromOptions(object[1]!, object[2]!, ttlNs, options)}\n`);
      return;
    }
    const baseUrl = options.baseUrl ?? (process.env.POD_IP ? `http://${hostForUrl(process.env.POD_IP)}:${LVP_PORT}` : undefined);
    if (!baseUrl) throw new Error("give --base-url (POD_IP is not set)");
    const source = await keySource(options);
    const [key] = await source.keys();
    if (!key) throw new Error(`no signing key in ${source.description}`);
    process.stdout.write(`${signLvpUrl(key, baseUrl, object[1]!, object[2]!, new Date(Date.now() + ttlNs / 1e6))}\n`);
  });
}

async function presignFromOptions(bucket: string, key: string, ttlNs: number, options: SignOptions): Promise<string> {
  const credentials = parseCredentials(readFileSync(options.credentials!, "utf8"));
  const accessKey = options.accessKey ?? [...credentials.keys()][0]!;
  const secretKey = credentials.get(accessKey);
  if (secretKey === undefined) throw new Error(`access key ${accessKey} is not in ${options.credentials}`);
  if (!options.publicUrl) throw new Error("give --public-url: the S3 endpoint as the URL's user reaches it");
  const endpoint = new URL(options.publicUrl);
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") throw new Error("--public-url must be http:// or https://");
  const seconds = Math.round(ttlNs / 1e9);
  if (seconds < 1 || seconds > MAX_PRESIGNED_SECONDS) throw new Error("--ttl must be from 1s to 168h (a SigV4 presigned URL lives at most a week)");
  return presignGet({ endpoint, bucket, key, accessKey, secretKey, region: options.region, expiresInSeconds: seconds });
}

function publicHost(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--public-url "${url}" is not a URL like https://backups.example.com`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("--public-url must be http:// or https://");
  if (parsed.pathname !== "/" && parsed.pathname !== "") throw new Error("--public-url must have no path: S3 clients address buckets at the root");
  return parsed.host;
}

/**
 * libuv's pool runs every file system call, and a durable write holds a thread for each fsync (several
 * ms on a real disk): with the default 4 threads, 32 concurrent small PUTs queue behind each other's
 * fsyncs and every GET behind them. The pool starts on its first use, so the size is set before any.
 * UV_THREADPOOL_SIZE from the environment wins.
 */
const STORAGE_THREAD_POOL = 32;

function widenThreadPool(): void {
  process.env.UV_THREADPOOL_SIZE ??= String(STORAGE_THREAD_POOL);
}

async function serveStorage(options: ServeOptions): Promise<void> {
  const log = createLogger();
  const durability = parseDurability(options.durability);
  if (durability === "none") log.warn("durability none: writes are NOT fsynced and can be lost or torn by a power cut (benchmarks only)");
  if (!options.lvpListen && !options.s3Listen) throw new Error("nothing to serve: give --s3-listen and/or --lvp-listen");
  if (options.s3Listen && !options.credentials) throw new Error("--s3-listen needs --credentials (an AWS shared-credentials file with the key pairs to accept)");
  if (options.s3Listen && options.readOnly) throw new Error("--s3-listen cannot be combined with --read-only");
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new Error("--tls-cert and --tls-key go together");
  if (options.lvpPlainHttp && !options.tlsCert) throw new Error("--lvp-plain-http only applies with --tls-cert: without it every port is plain HTTP already");
  // Every argument is checked before anything touches the root.
  const lvpAddress = options.lvpListen ? parseListenAddress(options.lvpListen) : undefined;
  const s3Address = options.s3Listen ? parseListenAddress(options.s3Listen) : undefined;
  const healthAddress = options.healthListen === "none" ? undefined : parseListenAddress(options.healthListen);
  const idleTimeoutMs = durationMs(options.s3IdleTimeout, "--s3-idle-timeout");
  const requestTimeoutMs = durationMs(options.s3RequestTimeout, "--s3-request-timeout");
  const multipartMaxAgeMs = durationMs(options.multipartMaxAge, "--multipart-max-age");
  const publicHosts = options.publicUrl ? [publicHost(options.publicUrl)] : [];
  const maxUploads = Number(options.maxUploads);
  if (!Number.isInteger(maxUploads) || maxUploads < 1) throw new Error(`--max-uploads must be a positive integer, not "${options.maxUploads}"`);
  const credentials = options.credentials && s3Address ? watchCredentials(options.credentials, log) : undefined;

  const store = await openStore(options, durability, log);
  for (const bucket of options.bucket ?? []) {
    try {
      await store.createBucket(bucket);
      log.info({ bucket }, "created bucket");
    } catch (err) {
      // Already there (or made a moment ago by another replica sharing the root): nothing to do.
      if (!(err instanceof StorageError && err.code === "BucketAlreadyExists")) throw err;
    }
  }
  const registry = createMetricsRegistry();
  const metrics = createStorageMetrics(registry);
  const lifecycle = new Lifecycle(log, { drainDelayMs: Number(options.drainDelay) });
  lifecycle.onShutdown(() => store.close());

  if (credentials) lifecycle.onShutdown(() => credentials.stop());
  if (healthAddress) await serveHealth(lifecycle, registry, healthAddress.port, healthAddress.host);

  const tls: TlsMaterial | undefined = options.tlsCert && options.tlsKey ? readTlsFiles(options.tlsCert, options.tlsKey) : undefined;
  /** The servers that speak TLS and reload the pair. */
  const servers: RunningServer[] = [];
  const plainServers: RunningServer[] = [];
  if (s3Address && credentials) {
    const uploads = await MultipartUploads.open(store, { hashPool: store.hashPool, durability, log, shared: options.shared ?? false });
    lifecycle.onShutdown(() => uploads.close());
    const timer = setInterval(() => {
      uploads.reclaim(multipartMaxAgeMs).then(
        (n) => n > 0 && log.info({ aborted: n, maxAge: options.multipartMaxAge }, "aborted abandoned multipart uploads"),
        (err: unknown) => log.warn({ err }, "reclaiming abandoned multipart uploads failed"),
      );
    }, Math.min(multipartMaxAgeMs, 3_600_000) || 3_600_000);
    timer.unref();
    lifecycle.onShutdown(() => clearInterval(timer));
    const handler = s3Handler({
      backend: new StoreBackend(store, uploads),
      credentials: credentials.current,
      log,
      metrics,
      domains: options.s3Domain ?? [],
      region: options.region === "us-east-1" ? "" : options.region,
      allowBucketChanges: options.bucketChanges,
      publicHosts,
      maxUploads,
    });
    const server = await listenAt(s3Address, { handler, ...(tls ? { tls } : {}), idleTimeoutMs, requestTimeoutMs, deferContinue: true, maxHeaderSize: S3_MAX_HEADER_BYTES });
    servers.push(server);
    log.info({ url: server.url, root: store.layout.root, durability, domains: options.s3Domain ?? [] }, "S3 endpoint listening");
  }
  if (lvpAddress) {
    const issuedHosts = options.lvpIssuedHost ?? lvpIssuedHosts(process.env.POD_IP, networkInterfaces());
    const keys = await keySource(options);
    const lvpTls = options.lvpPlainHttp ? undefined : tls;
    const server = await listenAt(lvpAddress, { handler: lvpHandler({ store, keys, issuedHosts, log, metrics }), ...(lvpTls ? { tls: lvpTls } : {}) });
    (lvpTls ? servers : plainServers).push(server);
    log.info({ url: server.url, root: store.layout.root, durability, readOnly: store.readOnly, keySource: keys.description, issuedHosts }, "LVP file server listening");
  }
  for (const server of [...servers, ...plainServers]) lifecycle.addServer(server);
  if (options.tlsCert && options.tlsKey) {
    const [certFile, keyFile] = [options.tlsCert, options.tlsKey];
    lifecycle.onShutdown(watchTlsFiles(certFile, keyFile, (material) => servers.forEach((server) => server.setTls(material)), log));
  }
  lifecycle.installSignalHandlers();
}

async function openStore(options: ServeOptions, durability: Durability, log: Logger): Promise<ObjectStore> {
  const settings = { durability, shared: options.shared ?? false, log };
  const root = options.root ?? process.env.MOUNT_POINT ?? LVP_DEFAULT_ROOT;
  if (options.readOnly) return ObjectStore.open(root, { ...settings, readOnly: true });
  try {
    return await ObjectStore.open(root, settings);
  } catch (err) {
    // LVP mounts the volume read-write, but an admin may mount it read-only for the file server alone.
    if (err instanceof StorageError && (err.code === "ReadOnly" || err.code === "PermissionDenied")) {
      log.warn({ err: err.message }, "the root is not writable; serving it read-only");
      return ObjectStore.open(root, { ...settings, readOnly: true });
    }
    throw err;
  }
}

function parseDurability(text: string): Durability {
  if (text === "full" || text === "none") return text;
  throw new Error(`--durability must be full or none, not "${text}"`);
}
