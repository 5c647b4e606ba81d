import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, statSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { createCa, createSigningKey, issueCertificate, type KeyPair } from "../../src/certs/authority.js";
import { toolPath } from "./binaries.js";
import { freePort, startChild, type Child } from "./processes.js";

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  /** A kubeconfig file for an admin (group system:masters) that kubectl and helm accept. */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  readonly caPem: string;
  /** A kubeconfig for any identity, authenticated by a client certificate signed by the cluster CA. */
  kubeConfigFor(user: string, groups?: string[]): KubeConfig;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Progress lines (default: silent). */
  log?: (line: string) => void;
  readyTimeoutMs?: number;
}

const DIR_PREFIX = "app-snapshots-cp-";

/** Temp dirs are named after the owning pid; remove those whose owner is gone (a SIGKILLed run). */
function sweepStaleDirs(): void {
  for (const name of readdirSync(os.tmpdir())) {
    const match = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    try {
      process.kill(pid, 0);
    } catch {
      try {
        if (statSync(path.join(os.tmpdir(), name)).isDirectory()) rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
      } catch {
        // another run may be sweeping the same dir
      }
    }
  }
}

/** A kubeconfig (YAML) for one client-certificate identity; the real node (node/pki.ts) writes its components' with it. */
export function kubeconfigYaml(server: string, caPem: string, user: string, client: KeyPair): string {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "app-snapshots-local", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(client.certPem), "client-key-data": b64(client.keyPem) } }],
    contexts: [{ name: user, context: { cluster: "app-snapshots-local", user } }],
    "current-context": user,
  });
}

/** Polls /readyz until 200; fails at once, with the log tail, if one of `children` exits first. */
export async function waitReady(url: string, ca: string, client: KeyPair, children: Child[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.process.exitCode !== null) {
        throw new Error(`${child.name} exited with code ${child.process.exitCode} during start-up:\n${child.tail()}`);
      }
    }
    last = await new Promise<string>((resolve) => {
      const req = https.get(`${url}/readyz`, { ca, cert: client.certPem, key: client.keyPem, timeout: 2_000 }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve(res.statusCode === 200 ? "ok" : `HTTP ${res.statusCode}: ${body.slice(0, 300)}`));
      });
      req.on("error", (err) => resolve(err.message));
      req.on("timeout", () => req.destroy(new Error("timeout")));
    });
    if (last === "ok") return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`kube-apiserver not ready after ${timeoutMs} ms (last: ${last})`);
}

/** A kubeconfig for any identity, from a running control plane's dir (works in any process). */
export function identityKubeConfig(plane: { url: string; dir: string }, user: string, groups: string[] = []): KubeConfig {
  const ca = { certPem: readFileSync(path.join(plane.dir, "ca.crt"), "utf8"), keyPem: readFileSync(path.join(plane.dir, "ca.key"), "utf8") };
  const client = issueCertificate(ca, { commonName: user, organizations: groups, usage: "client", validityDays: 1 });
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml(plane.url, ca.certPem, user, client));
  return kc;
}

/** A one-member etcd on loopback, without fsync (test data only): both the envtest-style and the real node's. */
export function singleEtcdArgs(name: string, dataDir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    `--name=${name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${name}=${peerUrl}`,
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ];
}

/**
 * Starts etcd and kube-apiserver on loopback, envtest-style, in a fresh temp dir. Everything is
 * torn down by stop(), and also when the process exits without calling it.
 */
export async function startControlPlane(options: StartOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? (() => undefined);
  sweepStaleDirs();
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const children: Child[] = [];
  let stopped = false;

  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    for (const child of children) child.process.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", stopSync);

  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const url = `https://127.0.0.1:${apiPort}`;

    const ca = createCa({ commonName: "app-snapshots-local-ca", validityDays: 7 });
    const serving = issueCertificate(ca, {
      commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      ipAddresses: ["127.0.0.1", "10.0.0.1"],
      usage: "server",
      validityDays: 7,
    });
    const admin = issueCertificate(ca, { commonName: "admin", organizations: ["system:masters"], usage: "client", validityDays: 7 });
    const saKey = createSigningKey();
    const file = (name: string, content: string) => {
      const target = path.join(dir, name);
      writeFileSync(target, content, { mode: 0o600 });
      return target;
    };
    const caFile = file("ca.crt", ca.certPem);
    // Kept so test workers (other processes) can mint identities with identityKubeConfig().
    file("ca.key", ca.keyPem);
    const servingCert = file("apiserver.crt", serving.certPem);
    const servingKey = file("apiserver.key", serving.keyPem);
    const saPrivate = file("sa.key", saKey.privateKeyPem);
    const saPublic = file("sa.pub", saKey.publicKeyPem);
    const kubeconfigPath = file("kubeconfig", kubeconfigYaml(url, ca.certPem, "admin", admin));
    mkdirSync(path.join(dir, "etcd"), { mode: 0o700 });

    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    log(`starting etcd on ${etcdUrl}`);
    children.push(
      startChild(
        "etcd",
        toolPath("etcd"),
        singleEtcdArgs("harness", path.join(dir, "etcd"), etcdUrl, peerUrl),
        path.join(dir, "etcd.log"),
      ),
    );

    log(`starting kube-apiserver on ${url}`);
    children.push(
      startChild(
        "kube-apiserver",
        toolPath("kube-apiserver"),
        [
          `--etcd-servers=${etcdUrl}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${apiPort}`,
          `--tls-cert-file=${servingCert}`,
          `--tls-private-key-file=${servingKey}`,
          `--client-ca-file=${caFile}`,
          `--cert-dir=${dir}`,
          "--service-cluster-ip-range=10.0.0.0/24",
          `--service-account-issuer=${url}/`,
          `--service-account-key-file=${saPublic}`,
          `--service-account-signing-key-file=${saPrivate}`,
          "--authorization-mode=RBAC",
          // No token controller runs, so pods would otherwise need a ServiceAccount that never appears.
          "--disable-admission-plugins=ServiceAccount",
          "--allow-privileged=true",
          "--endpoint-reconciler-type=none",
          ...(options.apiserverArgs ?? []),
        ],
        path.join(dir, "apiserver.log"),
      ),
    );

    await waitReady(url, ca.certPem, admin, children, options.readyTimeoutMs ?? 60_000);
    log(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);

    return {
      url,
      dir,
      kubeconfigPath,
      kubeConfig,
      caPem: ca.certPem,
      kubeConfigFor: (user, groups = []) => identityKubeConfig({ url, dir }, user, groups),
      async stop() {
        if (stopped) return;
        // The apiserver first, so it does not log etcd connection errors on the way down.
        for (const child of [...children].reverse()) await child.stop();
        stopSync();
        process.removeListener("exit", stopSync);
      },
    };
  } catch (err) {
    stopSync();
    process.removeListener("exit", stopSync);
    throw err;
  }
}
