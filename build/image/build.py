#!/usr/bin/env python3
"""The app-snapshots image: two layers written by oci.py, no base image, no shell, no package manager.

Usage: build.py --node BIN --debs DIR --bundle DIR --out FILE --ref REPO:TAG --epoch N --revision SHA [--rootfs DIR]

--rootfs also unpacks the layers into DIR: the Dockerfile's build context, so `docker build` makes the
same files with the same entrypoint from this one recipe.

  base layer  /usr/local/bin/node (the official build), the shared libraries it links (ld.so, libc, libm,
              libstdc++, libgcc_s, libatomic) and their Debian copyright files, taken from Debian packages
              unpacked under --debs (test/bench/fetch-debs), CA certificates (Debian's ca-certificates, joined
              as update-ca-certificates does), /etc/passwd and /etc/group naming 65532, /tmp (1777)
  app layer   /app: the esbuild bundle (build/image/bundle.mjs), and /local-volume-fileserver, the path
              local-volume-provider's plugin starts its sidecar with (a symlink to the LVP entry, whose
              #! line names /usr/local/bin/node: the kernel runs it, no shell needed)
"""
import argparse
import glob
import io
import json
import os
import shutil
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oci  # noqa: E402

# The files of Debian's libc6, libstdc++6, libgcc-s1 and libatomic1 that `ldd node` names, and what they link.
LIBRARIES = ("ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
             "libresolv.so.2", "libstdc++.so.6", "libgcc_s.so.1", "libatomic.so.1")
NODE = "/usr/local/bin/node"
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"


def tree(root, prefix):
    """Every file and symlink under root, as layer entries under prefix."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            source = os.path.join(dirpath, name)
            path = os.path.join(prefix, os.path.relpath(source, root))
            if os.path.islink(source):
                entries.append({"path": path, "type": "symlink", "target": os.readlink(source)})
            else:
                entries.append({"path": path, "type": "file", "source": source})
    return entries


def libraries(debs):
    """Each library file and the symlink chain that leads to it (libstdc++.so.6 -> libstdc++.so.6.0.30)."""
    entries, seen = [], set()
    for name in LIBRARIES:
        found = sorted(glob.glob(os.path.join(debs, "**", name), recursive=True))
        if not found:
            raise SystemExit(f"build.py: {name} is not in {debs}: fetch libc6 libstdc++6 libgcc-s1 libatomic1")
        for path in found:
            while path not in seen:
                seen.add(path)
                rel = os.path.relpath(path, debs)
                if os.path.islink(path):
                    target = os.readlink(path)
                    entries.append({"path": rel, "type": "symlink", "target": target})
                    path = os.path.normpath(os.path.join(os.path.dirname(path), target) if not target.startswith("/") else debs + target)
                else:
                    entries.append({"path": rel, "type": "file", "source": path})
    return entries


def base_layer(node, debs):
    certs = sorted(glob.glob(os.path.join(debs, "usr/share/ca-certificates/**/*.crt"), recursive=True))
    if not certs:
        raise SystemExit(f"build.py: no certificates under {debs}/usr/share/ca-certificates: fetch ca-certificates")
    bundle = "".join(open(c).read().rstrip("\n") + "\n" for c in certs)
    # libstdc++6's and libgcc-s1's doc folders are symlinks to gcc-12-base's: one copy is enough.
    copyrights = sorted(c for c in glob.glob(os.path.join(debs, "usr/share/doc/*/copyright")) if not os.path.islink(os.path.dirname(c)))
    return [
        {"path": NODE, "type": "file", "source": node, "mode": 0o755},
        *libraries(debs),
        *({"path": os.path.relpath(c, debs), "type": "file", "source": c} for c in copyrights),
        {"path": "etc/ssl/certs/ca-certificates.crt", "type": "file", "content": bundle},
        {"path": "etc/passwd", "type": "file", "content": PASSWD},
        {"path": "etc/group", "type": "file", "content": GROUP},
        {"path": "etc/nsswitch.conf", "type": "file", "content": NSSWITCH},
        {"path": "tmp", "type": "dir", "mode": 0o1777},
    ]


def app_layer(bundle):
    return [
        *tree(bundle, "app"),
        {"path": "local-volume-fileserver", "type": "symlink", "target": "/app/dist/src/lvpFileserver.js"},
    ]


def unpack(layers, rootfs, epoch):
    """The layers as a folder, modes (the sticky /tmp too) and times as in the image."""
    shutil.rmtree(rootfs, ignore_errors=True)
    os.makedirs(rootfs)
    # Our own archive: no member filter needed (and tarfile's "tar" filter would clear /tmp's sticky bit).
    trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    for entries in layers:
        with tarfile.open(fileobj=io.BytesIO(oci.layer_tar(entries, epoch))) as tar:
            tar.extractall(rootfs, numeric_owner=True, **trusted)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("node", "debs", "bundle", "out", "ref", "revision"):
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--epoch", required=True, type=int)
    parser.add_argument("--rootfs", help="also unpack the layers into this folder (the Dockerfile's context)")
    args = parser.parse_args()
    version = json.load(open(os.path.join(args.bundle, "package.json")))["version"]
    config = {
        "User": "65532:65532",
        "Entrypoint": [NODE, "/app/dist/src/cli.js"],
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production"],
        "WorkingDir": "/app",
        "Labels": {
            "org.opencontainers.image.title": "app-snapshots",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.revision": args.revision,
            "org.opencontainers.image.licenses": "Apache-2.0",
        },
    }
    layers = [base_layer(args.node, args.debs), app_layer(args.bundle)]
    archive, digest, (raw, compressed) = oci.image_archive(layers, config, args.ref, args.epoch)
    if args.rootfs:
        unpack(layers, args.rootfs, args.epoch)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "wb") as f:
        f.write(archive)
    os.replace(args.out + ".tmp", args.out)
    mb = lambda n: f"{n / 1e6:.1f} MB"
    print(f"{args.out}\n  name    {args.ref}\n  digest  {digest}\n  size    {mb(raw)} uncompressed, {mb(compressed)} gzipped")


if __name__ == "__main__":
    main()
