import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/* build/image/oci.py writes the image archive `make image` produces; here on small layers. */
const work = mkdtempSync(join(tmpdir(), "oci-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const EPOCH = 1_764_000_000;
const REF = "registry.example/team/app-snapshots:1.2.3";
const CONFIG = { User: "65532:65532", Entrypoint: ["/usr/local/bin/node", "/app/dist/src/cli.js"] };

/** Writes the inputs with the given file times and modes, builds, and returns the archive and the printed digest. */
function build(name: string, mtime: number, mode: number): { archive: string; digest: string } {
  const dir = join(work, name);
  const [program, data] = [join(`${dir}-program`), join(`${dir}-data`)];
  writeFileSync(program, "#!/bin/true\n");
  writeFileSync(data, "some data\n");
  chmodSync(program, mode | 0o111);
  chmodSync(data, mode);
  for (const file of [program, data]) utimesSync(file, mtime, mtime);
  const spec = (entries: unknown[], file: string) => {
    writeFileSync(file, JSON.stringify(entries));
    return file;
  };
  const base = spec([{ path: "/usr/local/bin/prog", type: "file", source: program }, { path: "tmp", type: "dir", mode: 0o1777 }], `${dir}-base.json`);
  const app = spec([{ path: "app/data", type: "file", source: data }, { path: "app/note", type: "file", content: "hello\n" }, { path: "entry", type: "symlink", target: "/usr/local/bin/prog" }], `${dir}-app.json`);
  writeFileSync(`${dir}-config.json`, JSON.stringify(CONFIG));
  const archive = `${dir}.oci.tar`;
  const digest = execFileSync("python3", ["build/image/oci.py", "--out", archive, "--ref", REF, "--epoch", String(EPOCH), "--config", `${dir}-config.json`, base, app], { encoding: "utf8" }).trim();
  return { archive, digest };
}

interface Entry { name: string; type: string; mode: number; uid: number; gid: number; uname: string; gname: string; mtime: number; size: number; link: string }
interface Archive { entries: Entry[]; files: Record<string, string>; layers: Entry[][]; gzipHeaders: number[][]; diffIds: string[] }

/** The archive as Python's tarfile reads it: outer entries, each file's text (or sha256 for blobs), each layer's entries. */
function inspect(archive: string): Archive {
  const script = `
import gzip, hashlib, io, json, sys, tarfile
entry = lambda i: {"name": i.name, "type": i.type.decode(), "mode": i.mode, "uid": i.uid, "gid": i.gid, "uname": i.uname, "gname": i.gname, "mtime": i.mtime, "size": i.size, "link": i.linkname}
out = {"entries": [], "files": {}, "layers": [], "gzipHeaders": [], "diffIds": []}
with tarfile.open(sys.argv[1]) as t:
    for i in t.getmembers():
        out["entries"].append(entry(i))
        if not i.isfile(): continue
        data = t.extractfile(i).read()
        out["files"][i.name] = "sha256:" + hashlib.sha256(data).hexdigest() if i.name.startswith("blobs/") else data.decode()
    index = json.loads(t.extractfile("index.json").read())
    manifest = json.loads(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]).read())
    for layer in manifest["layers"]:
        data = t.extractfile("blobs/sha256/" + layer["digest"][7:]).read()
        out["gzipHeaders"].append(list(data[:10]))
        raw = gzip.decompress(data)
        out["diffIds"].append("sha256:" + hashlib.sha256(raw).hexdigest())
        out["layers"].append([entry(i) for i in tarfile.open(fileobj=io.BytesIO(raw)).getmembers()])
print(json.dumps(out))
`;
  return JSON.parse(execFileSync("python3", ["-c", script, archive], { encoding: "utf8", maxBuffer: 64 << 20 })) as Archive;
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("oci.py, the image archive writer", () => {
  const first = build("first", 1_600_000_000, 0o640);
  const second = build("second", 1_700_000_000, 0o604);
  const image = inspect(first.archive);

  it("writes the same bytes from inputs with other file times and permission bits", () => {
    expect(second.digest).toBe(first.digest);
    expect(sha256(second.archive)).toBe(sha256(first.archive));
  });

  it("writes every layer entry sorted, owned by 0:0 with no names, dated --epoch, modes normalized, parents added", () => {
    const [base, app] = image.layers.map((layer) => layer.map((e) => [e.name, e.type, e.mode.toString(8), e.uid, e.gid, e.uname, e.gname, e.mtime, e.link]));
    expect(base).toEqual([
      ["tmp", "5", "1777", 0, 0, "", "", EPOCH, ""],
      ["usr", "5", "755", 0, 0, "", "", EPOCH, ""],
      ["usr/local", "5", "755", 0, 0, "", "", EPOCH, ""],
      ["usr/local/bin", "5", "755", 0, 0, "", "", EPOCH, ""],
      ["usr/local/bin/prog", "0", "755", 0, 0, "", "", EPOCH, ""],
    ]);
    expect(app).toEqual([
      ["app", "5", "755", 0, 0, "", "", EPOCH, ""],
      ["app/data", "0", "644", 0, 0, "", "", EPOCH, ""],
      ["app/note", "0", "644", 0, 0, "", "", EPOCH, ""],
      ["entry", "2", "777", 0, 0, "", "", EPOCH, "/usr/local/bin/prog"],
    ]);
  });

  it("gzips layers with a fixed header: no time, no file name", () => {
    for (const header of image.gzipHeaders) {
      expect(header.slice(0, 3)).toEqual([0x1f, 0x8b, 8]);
      expect(header[3], "FLG: no FNAME").toBe(0);
      expect(header.slice(4, 8), "MTIME").toEqual([0, 0, 0, 0]);
    }
  });

  it("is an OCI layout with docker save's manifest.json beside it, every blob named by its digest", () => {
    expect(image.entries.map((e) => e.name)).toEqual(["blobs", "blobs/sha256", ...Object.keys(image.files).filter((f) => f.startsWith("blobs/")).sort(), "index.json", "manifest.json", "oci-layout"].sort());
    for (const [name, digest] of Object.entries(image.files)) if (name.startsWith("blobs/")) expect(digest).toBe(`sha256:${name.slice("blobs/sha256/".length)}`);
    expect(JSON.parse(image.files["oci-layout"]!)).toEqual({ imageLayoutVersion: "1.0.0" });

    const index = JSON.parse(image.files["index.json"]!) as { manifests: Array<{ digest: string; annotations: Record<string, string>; platform: unknown }> };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.digest).toBe(first.digest);
    expect(index.manifests[0]!.annotations).toEqual({ "io.containerd.image.name": REF, "org.opencontainers.image.ref.name": "1.2.3" });
    expect(index.manifests[0]!.platform).toEqual({ architecture: "amd64", os: "linux" });

    const blob = (digest: string) => `blobs/sha256/${digest.slice(7)}`;
    const manifest = JSON.parse(readBlob(first.archive, blob(first.digest))) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar+gzip"]);
    const config = JSON.parse(readBlob(first.archive, blob(manifest.config.digest))) as { config: unknown; created: string; rootfs: { diff_ids: string[] } };
    expect(config.config).toEqual(CONFIG);
    expect(config.created).toBe(new Date(EPOCH * 1000).toISOString().replace(".000", ""));
    expect(config.rootfs.diff_ids).toEqual(image.diffIds);
    expect(JSON.parse(image.files["manifest.json"]!)).toEqual([{ Config: blob(manifest.config.digest), RepoTags: [REF], Layers: manifest.layers.map((l) => blob(l.digest)) }]);
  });
});

function readBlob(archive: string, name: string): string {
  return execFileSync("python3", ["-c", "import sys, tarfile; sys.stdout.write(tarfile.open(sys.argv[1]).extractfile(sys.argv[2]).read().decode())", archive, name], { encoding: "utf8" });
}
