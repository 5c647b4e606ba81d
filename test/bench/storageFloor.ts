// The storage benchmark's Node floor: bare node:http answering GET /<path> from <root>/<path> with no
// signature, no metadata and no symlink checks. Small files: stat + readFile (s3.md §11.1's "Node
// stat + readFile"); large ones: createReadStream with 1 MiB reads piped to the response (§11.1's
// best plain-Node GET). Usage: storageFloor.js ROOT PORT (127.0.0.1; a benchmark fixture, not a server).
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

const [root, port] = process.argv.slice(2);
if (!root || !port) throw new Error("usage: storageFloor.js ROOT PORT");

http
  .createServer((req, res) => {
    const file = path.join(root, decodeURIComponent((req.url ?? "/").split("?")[0]!));
    (async () => {
      const info = await stat(file);
      if (info.size > 64 * 1024) {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": info.size });
        createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": info.size });
      res.end(body);
    })().catch(() => {
      res.writeHead(404, { "content-length": 0 });
      res.end();
    });
  })
  .listen(Number(port), "127.0.0.1");
