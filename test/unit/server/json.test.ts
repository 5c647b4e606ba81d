import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listen, type RunningServer } from "../../../src/server/http.js";
import { jsonBody, jsonErrors } from "../../../src/server/json.js";

let server: RunningServer;
beforeAll(async () => {
  const app = express();
  app.post("/echo", ...jsonBody(1024), (req, res) => {
    res.json({ got: req.body as unknown });
  });
  app.use(jsonErrors);
  server = await listen({ port: 0, handler: app });
});
afterAll(() => server.close(100));

async function post(body: string | Uint8Array, contentType?: string) {
  const res = await fetch(`${server.url}/echo`, { method: "POST", body, headers: contentType ? { "content-type": contentType } : {} });
  return { status: res.status, body: (await res.json()) as { message?: string; got?: unknown } };
}

describe("JSON bodies", () => {
  it("parses JSON within the limit", async () => {
    expect(await post('{"a":1}', "application/json")).toEqual({ status: 200, body: { got: { a: 1 } } });
  });

  it("answers 400 with the parse error for malformed JSON", async () => {
    const { status, body } = await post('{"a":', "application/json");
    expect(status).toBe(400);
    expect(body.message).toMatch(/^request body is not valid JSON: /);
  });

  it("answers 400 for a JSON scalar (an AdmissionReview is always an object)", async () => {
    expect((await post("42", "application/json")).status).toBe(400);
  });

  it("answers 413 for a body over the limit", async () => {
    expect(await post(JSON.stringify({ pad: "x".repeat(2000) }), "application/json")).toEqual({
      status: 413,
      body: { message: "request body exceeds 1024 bytes" },
    });
  });

  it("answers 415 for a body that is not declared JSON", async () => {
    const { status, body } = await post("a=1", "application/x-www-form-urlencoded");
    expect(status).toBe(415);
    expect(body.message).toBe("expected Content-Type application/json, got application/x-www-form-urlencoded");
  });
});
