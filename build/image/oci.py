#!/usr/bin/env python3
"""Deterministic OCI image archives from layer specs, with no container engine.

Usage: oci.py --out IMAGE.tar --ref REPO:TAG --epoch SECONDS --config CONFIG.json LAYER.json...

A layer spec is a JSON list of entries {"path", "type": "file"|"dir"|"symlink", "mode"?, and "source"
(a file to copy) or "content" (text) for files, "target" for symlinks}. Parent folders are added.
Every entry gets uid/gid 0, mtime = --epoch, no user or group names, and the archive lists entries
sorted, so the same inputs give the same bytes whatever the files' own times, owners or umask were.
CONFIG.json holds the image config's "config" object (User, Entrypoint, Env, WorkingDir, Labels).

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256) plus the manifest.json
`docker save` writes beside it (Docker >= 25 writes both), so each loader finds what it reads:
containerd's `ctr images import` and podman read index.json (the name from the
io.containerd.image.name annotation), skopeo reads oci-archive: (org.opencontainers.image.ref.name
is the tag), Docker's legacy loader reads manifest.json (RepoTags; it gunzips the layers itself).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile
from datetime import datetime, timezone

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def _info(path, kind, epoch, mode, size=0, target=""):
    info = tarfile.TarInfo(path)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}[kind]
    info.mode, info.size, info.linkname = mode, size, target
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
    return info


def _entry_bytes(entry):
    if "content" in entry:
        return entry["content"].encode()
    with open(entry["source"], "rb") as f:
        return f.read()


def _default_mode(entry):
    if entry["type"] == "dir":
        return 0o755
    if entry["type"] == "symlink":
        return 0o777
    # Files keep only whether they are executable (a build machine's umask must not show).
    executable = "source" in entry and os.stat(entry["source"]).st_mode & 0o111
    return 0o755 if executable else 0o644


def layer_tar(entries, epoch):
    """The uncompressed layer: entries and their parent folders, sorted by path."""
    by_path = {}
    for entry in entries:
        path = entry["path"].strip("/")
        if path in by_path:
            raise SystemExit(f"oci.py: {path} is listed twice")
        by_path[path] = entry
        parent = os.path.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = {"path": parent, "type": "dir"}
            parent = os.path.dirname(parent)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(by_path):
            entry = by_path[path]
            data = _entry_bytes(entry) if entry["type"] == "file" else b""
            mode = entry.get("mode", _default_mode(entry))
            info = _info(path, entry["type"], epoch, mode, len(data), entry.get("target", ""))
            tar.addfile(info, io.BytesIO(data) if entry["type"] == "file" else None)
    return out.getvalue()


def gzip_bytes(data):
    """gzip with a fixed header: mtime 0, no file name (Python writes OS 255, 'unknown')."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def image_archive(layers, config, ref, epoch):
    """The archive bytes, the manifest digest (what a registry reports for the pushed image) and the
    layers' total size uncompressed and gzipped."""
    created = datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    blobs = {}
    layer_descriptors, diff_ids, sizes = [], [], [0, 0]
    for entries in layers:
        raw = layer_tar(entries, epoch)
        compressed = gzip_bytes(raw)
        blobs[_digest(compressed)] = compressed
        diff_ids.append(_digest(raw))
        sizes = [sizes[0] + len(raw), sizes[1] + len(compressed)]
        layer_descriptors.append({"mediaType": LAYER_TYPE, "digest": _digest(compressed), "size": len(compressed)})
    config_blob = _json({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": "make image (build/image)"} for _ in layers],
    })
    blobs[_digest(config_blob)] = config_blob
    manifest = _json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config_blob), "size": len(config_blob)},
        "layers": layer_descriptors,
    })
    blobs[_digest(manifest)] = manifest
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = _json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _digest(manifest),
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag},
        }],
    })
    blob_path = lambda digest: "blobs/sha256/" + digest.split(":", 1)[1]
    docker_manifest = _json([{
        "Config": blob_path(_digest(config_blob)),
        "RepoTags": [ref],
        "Layers": [blob_path(d["digest"]) for d in layer_descriptors],
    }])
    files = {"oci-layout": _json({"imageLayoutVersion": "1.0.0"}), "index.json": index, "manifest.json": docker_manifest}
    files.update({blob_path(digest): data for digest, data in blobs.items()})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(list(files) + ["blobs", "blobs/sha256"]):
            if path in files:
                tar.addfile(_info(path, "file", epoch, 0o644, len(files[path])), io.BytesIO(files[path]))
            else:
                tar.addfile(_info(path, "dir", epoch, 0o755))
    return out.getvalue(), _digest(manifest), tuple(sizes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--ref", required=True, help="the image's name, e.g. ghcr.io/app-snapshots/app-snapshots:0.1.0")
    parser.add_argument("--epoch", required=True, type=int, help="every mtime and the created time (SOURCE_DATE_EPOCH)")
    parser.add_argument("--config", required=True)
    parser.add_argument("layers", nargs="+")
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    layers = []
    for spec in args.layers:
        with open(spec) as f:
            layers.append(json.load(f))
    archive, digest, _ = image_archive(layers, config, args.ref, args.epoch)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "wb") as f:
        f.write(archive)
    os.replace(args.out + ".tmp", args.out)
    print(digest)


if __name__ == "__main__":
    main()
