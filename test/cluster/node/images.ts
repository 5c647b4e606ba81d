// Images for the real node, built here without a registry or a daemon and imported with `ctr images import`:
// pause (our static C program) and busybox (Debian's busybox-static, fetched by `make node-tools`).
// An archive carries both the docker-archive manifest.json (containerd names images by its RepoTags) and an
// OCI layout (index.json, oci-layout), so docker/podman load and skopeo accept it too.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cacheDir, pinnedVersions, repoRoot, toolPath } from "../binaries.js";
import { run } from "./host.js";

export interface ImageSpec {
  /** Full reference, e.g. localhost/app-snapshots/pause:<tag>. */
  ref: string;
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  env?: string[];
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A deterministic tar of a folder (sorted, owned by root, mtime 0). */
export function tarFolder(dir: string): Buffer {
  const out = path.join(os.tmpdir(), `app-snapshots-tar-${process.pid}-${Date.now()}.tar`);
  try {
    // Top-level names rather than ".": no "./" prefixes, and no entry for the folder itself (whose mode is mkdtemp's 0700).
    run("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "--format=gnu", "-C", dir, "-cf", out, "--", ...readdirSync(dir).sort()]);
    return readFileSync(out);
  } finally {
    rmSync(out, { force: true });
  }
}

/** The files of an image archive holding one uncompressed layer: path in the archive to content. */
export function imageArchiveFiles(layer: Buffer, spec: ImageSpec): Map<string, Buffer> {
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {
        ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        ...(spec.user ? { User: spec.user } : {}),
        Env: spec.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      },
      rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${configDigest}`, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layer.length }],
    }),
  );
  const manifestDigest = sha256(manifest);
  const tag = spec.ref.slice(spec.ref.lastIndexOf(":") + 1);
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: `sha256:${manifestDigest}`,
        size: manifest.length,
        annotations: { "io.containerd.image.name": spec.ref, "org.opencontainers.image.ref.name": tag },
      },
    ],
  };
  return new Map([
    ["oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }))],
    ["index.json", Buffer.from(JSON.stringify(index))],
    [`blobs/sha256/${layerDigest}`, layer],
    [`blobs/sha256/${configDigest}`, config],
    [`blobs/sha256/${manifestDigest}`, manifest],
    ["manifest.json", Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${configDigest}`, RepoTags: [spec.ref], Layers: [`blobs/sha256/${layerDigest}`] }]))],
  ]);
}

/** Writes an image archive from a folder holding the root filesystem. */
export function writeImageArchive(rootfs: string, spec: ImageSpec, target: string): void {
  const stage = mkdtempSync(path.join(os.tmpdir(), "app-snapshots-image-"));
  try {
    for (const [name, content] of imageArchiveFiles(tarFolder(rootfs), spec)) {
      mkdirSync(path.dirname(path.join(stage, name)), { recursive: true });
      writeFileSync(path.join(stage, name), content);
    }
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(`${target}.tmp`, tarFolder(stage));
    run("mv", [`${target}.tmp`, target]);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

const imagesDir = () => path.join(cacheDir, "node-images");
const pauseSource = () => path.join(repoRoot, "test", "cluster", "node", "pause.c");

/**
 * A locally built image, cached as an archive under .cache/node-images: `fill` lays out its root folder
 * the first time (in a scratch folder that is removed afterwards), later calls reuse the archive.
 */
export function cachedImage(name: string, tag: string, spec: Omit<ImageSpec, "ref">, fill: (root: string) => void): { ref: string; archive: string } {
  const ref = `localhost/app-snapshots/${name}:${tag}`;
  const archive = path.join(imagesDir(), `${name}-${tag}.tar`);
  if (!existsSync(archive)) {
    const root = mkdtempSync(path.join(os.tmpdir(), `app-snapshots-${name}-`));
    try {
      fill(root);
      writeImageArchive(root, { ...spec, ref }, archive);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return { ref, archive };
}

/** The pause image, named by its source's hash; compiled with gcc -static on first use. */
export function pauseImage(): { ref: string; archive: string } {
  const tag = sha256(readFileSync(pauseSource())).slice(0, 12);
  return cachedImage("pause", tag, { entrypoint: ["/pause"], user: "65535:65535" }, (root) => {
    run("gcc", ["-static", "-Os", "-s", "-o", path.join(root, "pause"), pauseSource()]);
  });
}

/** Debian's busybox-static, unpacked by `make node-tools` under .cache/node-debs. */
export function busyboxImage(): { ref: string; archive: string } {
  const debs = path.join(cacheDir, "node-debs");
  const binary = path.join(debs, "root", "bin", "busybox");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run 'make node-tools' (it fetches Debian's busybox-static)`);
  const fetched = readFileSync(path.join(debs, "fetched.txt"), "utf8");
  const version = /^busybox-static (?:\d+:)?(\S+)$/m.exec(fetched)?.[1] ?? "unknown";
  const tag = version.replace(/[^\w.-]/g, "-");
  return cachedImage("busybox", tag, { cmd: ["sh"] }, (root) => {
    mkdirSync(path.join(root, "bin"));
    copyFileSync(binary, path.join(root, "bin", "busybox"));
    chmodSync(path.join(root, "bin", "busybox"), 0o755);
    // Applet links at busybox's own paths (bin/sh, usr/bin/wget, ...), as its installer would make them.
    for (const applet of run(binary, ["--list-full"]).split("\n").filter(Boolean)) {
      const link = path.join(root, applet);
      if (applet === "bin/busybox" || existsSync(link)) continue;
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync("/bin/busybox", link);
    }
    mkdirSync(path.join(root, "etc"));
    writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
    writeFileSync(path.join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    mkdirSync(path.join(root, "tmp"), { mode: 0o1777 });
    chmodSync(path.join(root, "tmp"), 0o1777);
    mkdirSync(path.join(root, "root"), { mode: 0o700 });
  });
}

/**
 * kubectl alone (a static Go binary) with a writable /tmp as HOME: a pod's in-cluster client that speaks the
 * apiserver's TLS (busybox's wget cannot: its TLS handshake fails against Go's server).
 */
export function kubectlImage(): { ref: string; archive: string } {
  return cachedImage("kubectl", pinnedVersions().KUBERNETES!, { entrypoint: ["/bin/kubectl"], env: ["HOME=/tmp", "PATH=/bin"] }, (root) => {
    mkdirSync(path.join(root, "bin"));
    copyFileSync(toolPath("kubectl"), path.join(root, "bin", "kubectl"));
    chmodSync(path.join(root, "bin", "kubectl"), 0o755);
    mkdirSync(path.join(root, "tmp"));
    chmodSync(path.join(root, "tmp"), 0o1777);
  });
}
