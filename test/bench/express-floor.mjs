// A second floor: express 5 with express.json() answering a fixed AdmissionReview. The gap between
// it and the bare floor is what the framework costs; the gap between it and app-snapshots is ours.
import { readFileSync } from "node:fs";
import https from "node:https";
import express from "express";

const [certFile, keyFile, port] = process.argv.slice(2);
const app = express();
app.disable("etag");
app.post("/mutate/pods", express.json({ limit: "7mb" }), (req, res) => {
  const text = JSON.stringify({ apiVersion: req.body.apiVersion, kind: "AdmissionReview", response: { uid: req.body.request.uid, allowed: true } });
  res.setHeader("content-type", "application/json");
  res.end(text);
});
https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), keepAliveTimeout: 95_000 }, app).listen(Number(port), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => process.exit(0));
