// Velero's images for the real node, laid out as their Dockerfiles lay them out, from the commands `make velero`
// builds (test/velero/tools/build, test/velero/tools-kots/build): Velero's (velero, velero-restore-helper,
// velero-helper at the root, and restic in /usr/bin for Velero 1.16; upstream
// runs as a non-root user on a distroless base) and velero-plugin-for-aws's (FROM scratch: /plugins/<plugin> and
// /bin/cp-plugin, the entrypoint that copies the plugin into Velero's plugins volume, user 65532).
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cacheDir, pinnedVersions, repoRoot } from "../binaries.js";
import { cachedImage } from "./images.js";

function built(folder: string, files: string[]): string {
  const dir = path.join(cacheDir, folder);
  const missing = files.filter((file) => !existsSync(path.join(dir, file)));
  if (missing.length > 0) throw new Error(`${dir} lacks ${missing.join(", ")}: run 'make velero'`);
  return dir;
}

function copyExecutable(from: string, to: string): void {
  mkdirSync(path.dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, 0o755);
}

/** velero/velero:<VELERO> as `velero install --image` takes it. */
export function veleroImage(version = pinnedVersions().VELERO!): { ref: string; archive: string } {
  const commands = ["velero", "velero-restore-helper", "velero-helper"];
  const dir = built(`velero-image-${version}`, commands);
  // Velero before 1.17 runs restic from PATH for file-system backups; its image has it at /usr/bin/restic.
  const restic = path.join(dir, "restic");
  // Velero 1.17+ images carry restic for restores only; the tag says it is in, so archives made before stay apart.
  const tag = existsSync(restic) ? `${version}-restic` : version;
  return cachedImage("velero", tag, { entrypoint: ["/velero"], user: "65532:65532", env: ["PATH=/usr/bin:/", "HOME=/tmp"] }, (root) => {
    for (const command of commands) copyExecutable(path.join(dir, command), path.join(root, command));
    if (existsSync(restic)) copyExecutable(restic, path.join(root, "usr", "bin", "restic"));
    mkdirSync(path.join(root, "etc"));
    writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n");
    writeFileSync(path.join(root, "etc", "group"), "root:x:0:\nnonroot:x:65532:\n");
    mkdirSync(path.join(root, "tmp"));
    chmodSync(path.join(root, "tmp"), 0o1777);
  });
}

/** velero/velero-plugin-for-aws:<VELERO_AWS_PLUGIN>, the init container `velero install --plugins` adds. */
export function awsPluginImage(version = pinnedVersions().VELERO_AWS_PLUGIN!): { ref: string; archive: string } {
  const dir = built(`velero-plugin-image-${version}`, ["velero-plugin-for-aws", "cp-plugin"]);
  return cachedImage(
    "velero-plugin-for-aws",
    version,
    { entrypoint: ["cp-plugin", "/plugins/velero-plugin-for-aws", "/target/velero-plugin-for-aws"], user: "65532:65532", env: ["PATH=/bin"] },
    (root) => {
      copyExecutable(path.join(dir, "velero-plugin-for-aws"), path.join(root, "plugins", "velero-plugin-for-aws"));
      copyExecutable(path.join(dir, "cp-plugin"), path.join(root, "bin", "cp-plugin"));
    },
  );
}

/**
 * The local-volume-provider stand-in (test/velero/tools-kots/lvp-standin), laid out as LVP's image: the plugin in
 * /plugins and an entrypoint that copies it into Velero's plugins volume. Tagged with its build's hash.
 */
export function lvpStandInImage(): { ref: string; archive: string } {
  // The hash the build names it by (test/velero/tools-kots/build): its Go sources in name order, then go.sum.
  const tools = path.join(repoRoot, "test", "velero", "tools-kots");
  const sources = readdirSync(path.join(tools, "lvp-standin")).filter((name) => name.endsWith(".go")).sort().map((name) => path.join(tools, "lvp-standin", name));
  const hash = createHash("sha256");
  for (const file of [...sources, path.join(tools, "go.sum")]) hash.update(readFileSync(file));
  const tag = hash.digest("hex").slice(0, 12);
  const dir = built(`lvp-standin-${tag}`, ["local-volume-provider", "cp-plugin"]);
  return cachedImage(
    "local-volume-provider-standin",
    tag,
    { entrypoint: ["cp-plugin", "/plugins/local-volume-provider", "/target/local-volume-provider"], user: "65532:65532", env: ["PATH=/bin"] },
    (root) => {
      copyExecutable(path.join(dir, "local-volume-provider"), path.join(root, "plugins", "local-volume-provider"));
      copyExecutable(path.join(dir, "cp-plugin"), path.join(root, "bin", "cp-plugin"));
    },
  );
}
