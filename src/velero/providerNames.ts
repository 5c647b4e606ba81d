import { KNOWN_PROVIDERS, normalizeProvider } from "./objects.js";
import { nearest } from "./spelling.js";

const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Why no plugin can ever be registered under this provider name, or undefined. Velero prefixes a name
 * without "/" with velero.io/ (sanitizeName, pkg/plugin/clientmgmt/manager.go), and a plugin server
 * refuses to register a name that is not <DNS-1123 subdomain>/<non-empty name> (ValidatePluginName,
 * pkg/plugin/framework/common/server_mux.go).
 */
export function pluginNameProblem(provider: string): string | undefined {
  const parts = normalizeProvider(provider).split("/");
  if (parts.length !== 2) return "has more than one \"/\"; plugin names are <DNS subdomain>/<name>";
  if (parts[0] === "" || parts[1] === "") return "has an empty part; plugin names are <DNS subdomain>/<name>";
  if (!DNS1123_SUBDOMAIN.test(parts[0]!)) return `"${parts[0]}" is not a DNS subdomain (lowercase letters, digits, "-" and "."), so no plugin can register this name`;
  return undefined;
}

/** Names people write for a provider whose Velero plugin goes by another name. */
const ALIASES: Record<string, string> = { s3: "velero.io/aws", minio: "velero.io/aws", gcs: "velero.io/gcp", google: "velero.io/gcp", azureblob: "velero.io/azure" };

/**
 * The known provider an unknown name resembles (a different case, stray whitespace, a typo, a known
 * name under another prefix), or undefined. Velero looks plugins up by the exact name.
 */
export function resemblingProvider(provider: string): string | undefined {
  const cleaned = normalizeProvider(provider.replace(/\s+/g, "")).toLowerCase();
  if (KNOWN_PROVIDERS.includes(cleaned)) return cleaned;
  const name = cleaned.split("/").pop() ?? cleaned;
  if (ALIASES[name]) return ALIASES[name];
  const byName = KNOWN_PROVIDERS.find((known) => known.split("/")[1] === name);
  return byName ?? nearest(cleaned, KNOWN_PROVIDERS, 2);
}
