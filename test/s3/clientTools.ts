import { existsSync } from "node:fs";
import path from "node:path";
import { cacheDir, pinnedVersions } from "../cluster/binaries.js";

/**
 * How to start one real S3 client: spawn(command, [...args, ...yourArgs], { env: { ...process.env, ...env } }).
 * Paths are absolute (under .cache/, put there by `make s3-clients`); env holds only what the client needs
 * to run at all plus switches that keep it from calling home. The tests add credentials, endpoints and a
 * temp HOME/config per run.
 */
export interface ClientTool {
  command: string;
  /** Arguments that come before the client's own (the script for the Python clients). */
  args: string[];
  env: Record<string, string>;
}

const makeTarget = "make s3-clients";
/** Debian's interpreter: the unpacked python3-* packages are built for it (cpython-311 extensions). */
const systemPython = "/usr/bin/python3";

function mustExist(file: string, what: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run '${makeTarget}' (it ${what})`);
  return file;
}

/** Where `make s3-clients` unpacks the Debian packages (S3_CLIENT_DEBS in versions.env). */
export function s3ClientsRoot(): string {
  return path.join(cacheDir, "s3clients", "root");
}

function debianBinary(name: string, debianPackage = name): string {
  return mustExist(path.join(s3ClientsRoot(), "usr", "bin", name), `unpacks Debian's ${debianPackage} package into ${s3ClientsRoot()}`);
}

function debianPythonTool(script: string, debianPackage: string, env: Record<string, string> = {}): ClientTool {
  const file = debianBinary(script, debianPackage);
  mustExist(systemPython, "runs the Debian Python clients on Debian's python3 3.11, which must be installed");
  return {
    command: systemPython,
    args: [file],
    env: {
      PYTHONPATH: path.join(s3ClientsRoot(), "usr", "lib", "python3", "dist-packages"),
      PYTHONNOUSERSITE: "1",
      ...env,
    },
  };
}

/** kopia built from the fork Velero links (KOPIA_MODULE@KOPIA in versions.env). */
export function kopiaTool(): ClientTool {
  const { KOPIA_MODULE, KOPIA } = pinnedVersions();
  if (!KOPIA) throw new Error("versions.env pins no KOPIA");
  const file = mustExist(path.join(cacheDir, "bin", `kopia-${KOPIA}`), `builds kopia ${KOPIA_MODULE}@${KOPIA}`);
  return { command: file, args: [], env: { KOPIA_CHECK_FOR_UPDATES: "false", KOPIA_USE_KEYRING: "false" } };
}

/** Debian bookworm's restic. */
export function resticTool(): ClientTool {
  return { command: debianBinary("restic"), args: [], env: {} };
}

/**
 * Debian bookworm's rclone, with an in-memory config (remotes come from RCLONE_CONFIG_<NAME>_* variables).
 * AWS_CA_BUNDLE is blanked: its AWS SDK (Go, v1) fails every S3 remote with "LoadCustomCABundleError ...
 * unsupported transport" when that variable is set, and some machines set it; use --ca-cert for a test CA.
 */
export function rcloneTool(): ClientTool {
  return { command: debianBinary("rclone"), args: [], env: { RCLONE_CONFIG: "/dev/null", AWS_CA_BUNDLE: "" } };
}

/** Debian bookworm's s3cmd, on Debian's python3. */
export function s3cmdTool(): ClientTool {
  return debianPythonTool("s3cmd", "s3cmd");
}

/** Debian bookworm's awscli (v2), on Debian's python3; no pager, no EC2 instance-metadata lookups. */
export function awsTool(): ClientTool {
  return debianPythonTool("aws", "awscli", { AWS_PAGER: "", AWS_EC2_METADATA_DISABLED: "true" });
}
