import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createSecureContext } from "node:tls";
import { parseBundle } from "../certs/pem.js";
import type { TlsMaterial } from "./http.js";
import type { Logger } from "./logger.js";

/** Reads a certificate and key pair, refusing a pair that does not belong together. */
export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const material = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  createSecureContext(material); // throws on unparsable PEM or a key that does not match the certificate
  return material;
}

/** Reads a PEM bundle of CA certificates, refusing a file that holds none or one that does not parse. */
export function readCaFile(file: string): Buffer {
  const pem = readFileSync(file);
  if (parseBundle(pem.toString("utf8")).length === 0) throw new Error(`${file} holds no PEM certificate`);
  return pem;
}

/**
 * Polls the files (robust to Secret and ConfigMap volumes, whose files change by a symlink swap that
 * inotify on the file misses) and hands every new valid result of `read` to `apply`. A half-written or
 * inconsistent set is logged and skipped; the previous one stays in use.
 */
export function watchFiles<T extends Buffer | TlsMaterial>(files: string[], read: () => T, apply: (value: T) => void, log: Logger, what: string, intervalMs = 1_000): () => void {
  let last = "";
  const reload = () => {
    try {
      const value = read();
      const fingerprint = Buffer.isBuffer(value) ? value.toString() : `${value.cert.toString()}\n${value.key.toString()}`;
      if (fingerprint === last) return;
      last = fingerprint;
      apply(value);
      log.info({ files }, `${what} loaded`);
    } catch (err) {
      log.warn({ files, err: (err as Error).message }, `${what} files not usable yet; keeping the previous ones`);
    }
  };
  reload();
  for (const file of files) watchFile(file, { interval: intervalMs, persistent: false }, reload);
  return () => files.forEach((file) => unwatchFile(file, reload));
}

/** watchFiles for a serving certificate and key pair. */
export function watchTlsFiles(certFile: string, keyFile: string, apply: (tls: TlsMaterial) => void, log: Logger, intervalMs = 1_000): () => void {
  return watchFiles([certFile, keyFile], () => readTlsFiles(certFile, keyFile), apply, log, "serving certificate", intervalMs);
}
