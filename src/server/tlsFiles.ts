import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createSecureContext } from "node:tls";
import type { TlsMaterial } from "./http.js";
import type { Logger } from "./logger.js";

/** Reads a certificate and key pair, refusing a pair that does not belong together. */
export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  const material = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  createSecureContext(material); // throws on unparsable PEM or a key that does not match the certificate
  return material;
}

/**
 * Polls the files (robust to Secret volumes, whose files change by a symlink swap that inotify on
 * the file misses) and hands every new valid pair to `apply`. A half-written or mismatched pair
 * is logged and skipped; the previous certificate stays in use.
 */
export function watchTlsFiles(certFile: string, keyFile: string, apply: (tls: TlsMaterial) => void, log: Logger, intervalMs = 1_000): () => void {
  let last = "";
  const reload = () => {
    try {
      const material = readTlsFiles(certFile, keyFile);
      const fingerprint = `${material.cert.toString()}\n${material.key.toString()}`;
      if (fingerprint === last) return;
      last = fingerprint;
      apply(material);
      log.info({ certFile }, "serving certificate loaded");
    } catch (err) {
      log.warn({ certFile, keyFile, err: (err as Error).message }, "certificate files not usable yet; keeping the previous pair");
    }
  };
  reload();
  watchFile(certFile, { interval: intervalMs, persistent: false }, reload);
  watchFile(keyFile, { interval: intervalMs, persistent: false }, reload);
  return () => {
    unwatchFile(certFile, reload);
    unwatchFile(keyFile, reload);
  };
}
