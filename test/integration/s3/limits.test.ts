import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startS3, type S3TestServer } from "../../s3/harness.js";
import { bodyOf, RawConnection, requestHead } from "../../s3/inspect.js";
import { send, signRequest } from "../../s3/signer.js";

const MiB = 1024 * 1024;

describe("upload size limits", () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    // A 1 MiB limit stands in for S3's 5 GiB, so the test does not move gigabytes.
    s3 = await startS3({ buckets: ["bkt"], maxObjectBytes: MiB });
  });
  afterAll(async () => {
    await s3.close();
  });

  it("refuses a declared length over the limit before reading the body (no 100 Continue)", async () => {
    const request = await signRequest(
      { method: "PUT", target: "/bkt/too-big", headers: { "content-length": String(MiB + 1), expect: "100-continue" } },
      s3.host,
      { payloadHash: "UNSIGNED-PAYLOAD" },
    );
    const reply = await send(s3.port, { ...request, body: undefined });
    expect(reply.status).toBe(400);
    expect(reply.code).toBe("EntityTooLarge");
    expect(reply.headers.connection).toBe("close");
    expect(existsSync(join(s3.root, "bkt", "too-big"))).toBe(false);
  });

  it("cuts off a body of undeclared length at the limit and stores nothing", async () => {
    const body = randomBytes(2 * MiB);
    // Transfer-Encoding: chunked, no Content-Length: the limit is found while streaming.
    const request = await signRequest({ method: "PUT", target: "/bkt/streamed", headers: { "transfer-encoding": "chunked" }, body: [body.subarray(0, MiB), body.subarray(MiB)] }, s3.host, {
      payloadHash: "UNSIGNED-PAYLOAD",
    });
    const reply = await send(s3.port, request);
    expect(reply.status).toBe(400);
    expect(reply.code).toBe("EntityTooLarge");
    expect(existsSync(join(s3.root, "bkt", "streamed"))).toBe(false);
    // Exactly the limit is fine.
    const fits = await signRequest({ method: "PUT", target: "/bkt/fits", headers: {}, body: body.subarray(0, MiB) }, s3.host);
    expect((await send(s3.port, fits)).status).toBe(200);
  });

  it("answers 503 SlowDown beyond --max-uploads uploads at once, and serves them again when one ends", async () => {
    const busy = await startS3({ buckets: ["bkt"], overrides: { maxUploads: 1 } });
    try {
      const body = randomBytes(64 * 1024);
      const slow = await signRequest({ method: "PUT", target: "/bkt/slow", headers: { "content-length": String(body.length) }, body }, busy.host);
      const connection = await RawConnection.connect(busy.port);
      await connection.write(requestHead(slow));
      await connection.write(bodyOf(slow).subarray(0, 1000));
      // The first upload is now being written; a second one is turned away without its body being read.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = await send(busy.port, await signRequest({ method: "PUT", target: "/bkt/second", headers: {}, body: Buffer.from("x") }, busy.host));
      expect([second.status, second.code]).toEqual([503, "SlowDown"]);
      // Reads are not counted.
      expect((await send(busy.port, await signRequest({ method: "GET", target: "/bkt?list-type=2", headers: {} }, busy.host))).status).toBe(200);
      await connection.write(bodyOf(slow).subarray(1000));
      expect((await connection.response()).status).toBe(200);
      connection.destroy();
      expect((await send(busy.port, await signRequest({ method: "PUT", target: "/bkt/second", headers: {}, body: Buffer.from("x") }, busy.host))).status).toBe(200);
    } finally {
      await busy.close();
    }
  });
});
