// Velero's images for the real node, laid out as their Dockerfiles lay them out, from the commands `make velero`
// builds (test/velero/tools/build, test/velero/tools-kots/build): Velero's (velero, velero-restore-helper,
// velero-helper at the root, and restic in /usr/bin for Velero 1.16; upstream
// runs as a non-root user on a distroless base) and velero-plugin-for-aws's (FROM scratch: /plugins/<plugin> and
// /bin/cp-plugin, the entrypoint that copies the plugin into Velero's plugins volume, user 65532).
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cacheDir, pinnedVersions } from "../binaries.js";
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
  return cachedImage("velero", version, { entrypoint: ["/velero"], user: "65532:65532", env: ["PATH=/usr/bin:/", "HOME=/tmp"] }, (root) => {
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
