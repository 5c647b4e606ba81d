import type { Command } from "commander";
import { serveHealth } from "../server/health.js";
import { hostForUrl, listen, type RunningServer, type TlsMaterial } from "../server/http.js";
import { Lifecycle } from "../server/lifecycle.js";
import { createLogger, type Logger } from "../server/logger.js";
import { createMetricsRegistry } from "../server/metrics.js";
import { readTlsFiles, watchTlsFiles } from "../server/tlsFiles.js";
import { StorageError } from "../storage/errors.js";
import { parseListenAddress, type ListenAddress } from "../storage/listenAddress.js";
import { lvpHandler } from "../storage/lvpServer.js";
import { LVP_PORT, signLvpUrl } from "../storage/lvpSignature.js";
import { createStorageMetrics } from "../storage/metrics.js";
import { loadKubeConfig } from "../kube/loadConfig.js";
import { keyFromEnv, keyFromFile, keyFromSecret, type SigningKeySource } from "../storage/signingKeys.js";
import { ObjectStore, type Durability } from "../storage/store.js";
import { parseGoDuration } from "../velero/duration.js";
import { collect } from "./options.js";

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
  healthListen: string;
  durability: string;
  shared?: boolean;
  readOnly?: boolean;
  lvpIssuedHost?: string[];
  tlsCert?: string;
  tlsKey?: string;
  drainDelay: string;
}

interface SignOptions extends KeyOptions {
  ttl: string;
  baseUrl?: string;
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
      .option("--lvp-issued-host <host:port>", "a host:port signed URLs may name besides the request's Host; repeatable (default: $POD_IP:3000, what LVP puts in its URLs)", collect)
      .option("--health-listen <[host]:port>", "plain-HTTP /healthz, /readyz, /metrics, or none", "127.0.0.1:8080")
      .option("--durability <mode>", "full: fsync before acknowledging a write; none: skip fsync (benchmarks only)", "full")
      .option("--shared", "several replicas share the root (RWX volume): only reclaim temp files of instances that stopped")
      .option("--read-only", "never write to the root (no temp-file reclaim, no metadata sweep)")
      .option("--tls-cert <file>", "serve the LVP port over TLS with this certificate (reloaded on change)")
      .option("--tls-key <file>", "key for --tls-cert")
      .option("--drain-delay <ms>", "time between turning unready and closing listeners on SIGTERM", "3000"),
  ).action(async (options: ServeOptions) => {
    await serveStorage(options);
  });

  addKeyOptions(
    storage
      .command("sign")
      .argument("<url>", "the object, as s3://bucket/key")
      .description("print a signed download URL for an object (LVP format, for the --lvp-listen server)")
      .option("--ttl <duration>", "how long the URL stays valid (Go duration)", "10m")
      .option("--base-url <url>", `scheme://host[:port] the URL points at (default: http://$POD_IP:${LVP_PORT}, like LVP)`),
  ).action(async (url: string, options: SignOptions) => {
    const object = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
    if (!object) throw new Error(`"${url}" is not s3://bucket/key`);
    const ttlNs = parseGoDuration(options.ttl);
    if (ttlNs === undefined || ttlNs <= 0) throw new Error(`--ttl "${options.ttl}" is not a positive Go duration like 10m`);
    const baseUrl = options.baseUrl ?? (process.env.POD_IP ? `http://${hostForUrl(process.env.POD_IP)}:${LVP_PORT}` : undefined);
    if (!baseUrl) throw new Error("give --base-url (POD_IP is not set)");
    const source = await keySource(options);
    const [key] = await source.keys();
    if (!key) throw new Error(`no signing key in ${source.description}`);
    process.stdout.write(`${signLvpUrl(key, baseUrl, object[1]!, object[2]!, new Date(Date.now() + ttlNs / 1e6))}\n`);
  });
}

async function serveStorage(options: ServeOptions): Promise<void> {
  const log = createLogger();
  const durability = parseDurability(options.durability);
  if (durability === "none") log.warn("durability none: writes are NOT fsynced and can be lost or torn by a power cut (benchmarks only)");
  if (!options.lvpListen) throw new Error("nothing to serve: give --lvp-listen (the S3 endpoint comes with --s3-listen in a later release)");
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new Error("--tls-cert and --tls-key go together");
  // Every argument is checked before anything touches the root.
  const lvpAddress = parseListenAddress(options.lvpListen);
  const healthAddress = options.healthListen === "none" ? undefined : parseListenAddress(options.healthListen);

  const store = await openStore(options, durability, log);
  const registry = createMetricsRegistry();
  const metrics = createStorageMetrics(registry);
  const lifecycle = new Lifecycle(log, { drainDelayMs: Number(options.drainDelay) });
  lifecycle.onShutdown(() => store.close());

  const issuedHosts = options.lvpIssuedHost ? options.lvpIssuedHost : process.env.POD_IP ? [`${hostForUrl(process.env.POD_IP)}:${LVP_PORT}`] : [];
  const keys = await keySource(options);
  if (healthAddress) await serveHealth(lifecycle, registry, healthAddress.port, healthAddress.host);

  const tls: TlsMaterial | undefined = options.tlsCert && options.tlsKey ? readTlsFiles(options.tlsCert, options.tlsKey) : undefined;
  const server = await listenDualStack(lvpAddress, lvpHandler({ store, keys, issuedHosts, log, metrics }), tls);
  lifecycle.addServer(server);
  if (options.tlsCert && options.tlsKey) lifecycle.onShutdown(watchTlsFiles(options.tlsCert, options.tlsKey, (material) => server.setTls(material), log));
  lifecycle.installSignalHandlers();
  log.info({ url: server.url, root: store.layout.root, durability, readOnly: store.readOnly, keySource: keys.description, issuedHosts }, "LVP file server listening");
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

/** An empty host means every interface: IPv6 and IPv4 where the kernel has IPv6, IPv4 otherwise. */
async function listenDualStack(address: ListenAddress, handler: Parameters<typeof listen>[0]["handler"], tls: TlsMaterial | undefined): Promise<RunningServer> {
  const base = { handler, port: address.port, ...(tls ? { tls } : {}) };
  if (address.host !== undefined) return listen({ ...base, host: address.host });
  try {
    return await listen({ ...base, host: "::" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EAFNOSUPPORT" && (err as NodeJS.ErrnoException).code !== "EADDRNOTAVAIL") throw err;
    return listen({ ...base, host: "0.0.0.0" });
  }
}

function parseDurability(text: string): Durability {
  if (text === "full" || text === "none") return text;
  throw new Error(`--durability must be full or none, not "${text}"`);
}
