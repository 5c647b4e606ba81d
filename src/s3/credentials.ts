import { readFileSync, unwatchFile, watchFile } from "node:fs";
import type { Logger } from "../server/logger.js";

/** Access key → secret key. */
export type Credentials = ReadonlyMap<string, string>;

/**
 * Parses an AWS shared-credentials file, the same file a Velero BSL's credential Secret holds, so
 * one Secret can serve both Velero and this server:
 *
 *   [default]
 *   aws_access_key_id = AKIA…
 *   aws_secret_access_key = …
 *
 * Every profile with both keys is a pair; `#`/`;` comments and other settings are ignored.
 */
export function parseCredentials(text: string): Credentials {
  const pairs = new Map<string, string>();
  const profiles: Array<{ name: string; line: number; values: Map<string, string> }> = [];
  let current: (typeof profiles)[number] | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = { name: section[1]!, line: index + 1, values: new Map() };
      profiles.push(current);
      return;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`line ${index + 1}: expected "name = value" or "[profile]"`);
    if (!current) throw new Error(`line ${index + 1}: a setting before the first [profile] header`);
    current.values.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  });
  for (const profile of profiles) {
    const id = profile.values.get("aws_access_key_id");
    const secret = profile.values.get("aws_secret_access_key");
    if (!id && !secret) continue;
    if (!id || !secret) throw new Error(`profile [${profile.name}] (line ${profile.line}) needs both aws_access_key_id and aws_secret_access_key`);
    if (!/^[\x21-\x7e]{3,128}$/.test(id) || id.includes("/")) throw new Error(`profile [${profile.name}]: the access key id must be 3-128 printable characters without "/"`);
    if (secret.length < 8) throw new Error(`profile [${profile.name}]: the secret access key is shorter than 8 characters`);
    const existing = pairs.get(id);
    if (existing !== undefined && existing !== secret) throw new Error(`access key ${id} appears twice with different secrets`);
    pairs.set(id, secret);
  }
  if (pairs.size === 0) throw new Error("no profile has aws_access_key_id and aws_secret_access_key");
  return pairs;
}

/**
 * Loads the credentials file and keeps it current: polled (robust to Secret volume symlink swaps),
 * a file that fails to parse is logged and the previous pairs stay in use. Secrets are never logged.
 */
export function watchCredentials(file: string, log: Logger, intervalMs = 1_000): { current: () => Credentials; stop: () => void } {
  let credentials = parseCredentials(readFileSync(file, "utf8"));
  let last = "";
  log.info({ file, accessKeys: [...credentials.keys()] }, "S3 credentials loaded");
  const reload = () => {
    try {
      const text = readFileSync(file, "utf8");
      if (text === last) return;
      last = text;
      const next = parseCredentials(text);
      const changed = next.size !== credentials.size || [...next].some(([id, secret]) => credentials.get(id) !== secret);
      credentials = next;
      if (changed) log.info({ file, accessKeys: [...next.keys()] }, "S3 credentials reloaded");
    } catch (err) {
      log.warn({ file, err: (err as Error).message }, "S3 credentials file not usable; keeping the previous credentials");
    }
  };
  last = readFileSync(file, "utf8");
  watchFile(file, { interval: intervalMs, persistent: false }, reload);
  return { current: () => credentials, stop: () => unwatchFile(file, reload) };
}
