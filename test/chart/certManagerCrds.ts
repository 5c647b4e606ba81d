import { existsSync } from "node:fs";
import path from "node:path";
import { cacheDir, pinnedVersions } from "../cluster/binaries.js";

export const certManagerVersion = pinnedVersions().CERT_MANAGER!;

/** The two kinds the chart renders in cert-manager mode. */
const CRD_FILES = ["cert-manager.io_issuers.yaml", "cert-manager.io_certificates.yaml"];

/**
 * The Issuer and Certificate CRD files that `make tools` copies out of cert-manager's Go module
 * (its deploy/crds/ holds plain controller-gen YAML) into .cache/crds/cert-manager-<version>.
 */
export function certManagerCrdFiles(): string[] {
  const dir = path.join(cacheDir, "crds", `cert-manager-${certManagerVersion}`);
  const files = CRD_FILES.map((name) => path.join(dir, name));
  const missing = files.filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`${missing.join(", ")} missing: run 'make tools' (it fetches cert-manager ${certManagerVersion}'s CRDs from the Go module proxy)`);
  return files;
}
