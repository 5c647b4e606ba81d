#!/usr/bin/env python3
"""Compares two OCI image archives by what a container sees: the merged files and the run config.

Usage: compare.py A.oci.tar B.oci.tar   (exit 0 and "same files, same config" when they match)

Used to show that the Dockerfile (built with `buildah bud` or `docker build` from .cache/image/rootfs)
makes the image `make image` writes: docs/image.md. Timestamps are not compared (builders set their own), nor the file-type bits some
builders add to tar modes.
"""
import gzip
import hashlib
import io
import json
import sys
import tarfile

RUN_CONFIG = ("User", "Entrypoint", "Cmd", "Env", "WorkingDir")


def image(path):
    files, config = {}, {}
    with tarfile.open(path) as archive:
        blob = lambda digest: archive.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()
        index = json.loads(archive.extractfile("index.json").read())
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"])).get("config", {})
        for layer in manifest["layers"]:
            data = blob(layer["digest"])
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                for member in tar.getmembers():
                    name = member.name.lstrip("./").rstrip("/")
                    if not name:
                        continue
                    content = hashlib.sha256(tar.extractfile(member).read()).hexdigest()[:16] if member.isfile() else ""
                    files[name] = (member.type.decode(), oct(member.mode & 0o7777), member.uid, member.gid, member.linkname, content)
    return files, {key: config.get(key) for key in RUN_CONFIG}


def main():
    (files_a, config_a), (files_b, config_b) = image(sys.argv[1]), image(sys.argv[2])
    differences = [f"{name}: {files_a.get(name)} != {files_b.get(name)}" for name in sorted(set(files_a) | set(files_b)) if files_a.get(name) != files_b.get(name)]
    differences += [f"config {key}: {config_a[key]} != {config_b[key]}" for key in RUN_CONFIG if config_a[key] != config_b[key]]
    print("\n".join(differences) or f"same files ({len(files_a)}), same config {json.dumps(config_a)}")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
