import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AwsChunkedDecoder, ChunkedEncodingError, type ChunkedDecoderOptions } from "../../../src/s3/awsChunked.js";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/**
 * aws-chunked written from the format's description. In "signed" mode each chunk's signature is
 * the SHA-256 of its data, so the test verifier can check the decoder hands over the right digest.
 */
function encode(payload: Buffer, sizes: number[], options: { signed?: boolean; trailers?: Array<[string, string]> } = {}): Buffer {
  const parts: Buffer[] = [];
  const header = (data: Buffer) => `${data.length.toString(16)}${options.signed ? `;chunk-signature=${sha256(data)}` : ""}\r\n`;
  let at = 0;
  for (const size of sizes) {
    if (at >= payload.length) break;
    const data = payload.subarray(at, at + Math.max(1, size));
    parts.push(Buffer.from(header(data)), data, Buffer.from("\r\n"));
    at += data.length;
  }
  if (at < payload.length) {
    const data = payload.subarray(at);
    parts.push(Buffer.from(header(data)), data, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(header(Buffer.alloc(0))));
  for (const [name, value] of options.trailers ?? []) parts.push(Buffer.from(`${name}:${value}\r\n`));
  parts.push(Buffer.from("\r\n"));
  return Buffer.concat(parts);
}

/** Feeds `encoded` in pieces cut at `cuts`, collects the output. */
async function decode(encoded: Buffer, cuts: number[], options: ChunkedDecoderOptions = {}): Promise<{ output: Buffer; decoder: AwsChunkedDecoder }> {
  const points = [...new Set(cuts.map((c) => c % (encoded.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let last = 0;
  for (const point of [...points, encoded.length]) {
    pieces.push(encoded.subarray(last, point));
    last = point;
  }
  const decoder = new AwsChunkedDecoder(options);
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces.filter((p) => p.length > 0)), decoder, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  return { output: Buffer.concat(out), decoder };
}

const verifyBySha = { signed: true, verifyChunk: (signature: string, digest: string) => signature === digest };

describe("aws-chunked decoding", () => {
  it("passes on exactly the payload, for any chunking, any split of the stream, signed or not, with trailers", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        fc.array(fc.tuple(fc.constantFrom("x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-trailer-signature"), fc.base64String({ maxLength: 64 })), { maxLength: 2 }),
        async (bytes, sizes, cuts, signed, trailerList) => {
          const payload = Buffer.from(bytes);
          const trailers = [...new Map(trailerList)];
          const { output, decoder } = await decode(encode(payload, sizes, { signed, trailers }), cuts, signed ? verifyBySha : {});
          expect(output.equals(payload)).toBe(true);
          expect(decoder.decodedBytes).toBe(payload.length);
          expect([...decoder.trailers]).toEqual(trailers.map(([n, v]) => [n, v.trim()]));
        },
      ),
      { numRuns: 400 },
    );
  });

  it("decodes the single-chunk CRC32 trailer body the AWS SDK sends", async () => {
    const body = Buffer.from("1f\r\n" + "a".repeat(31) + "\r\n0\r\nx-amz-checksum-crc32:sOO8/Q==\r\n\r\n");
    const { output, decoder } = await decode(body, []);
    expect(output.toString()).toBe("a".repeat(31));
    expect(decoder.trailers.get("x-amz-checksum-crc32")).toBe("sOO8/Q==");
  });

  it("fails every truncation with IncompleteBody or a framing error, never silently", async () => {
    const encoded = encode(Buffer.from("hello, chunked world"), [5, 7], { trailers: [["x-amz-checksum-crc32", "AAAAAA=="]] });
    for (let cut = 0; cut < encoded.length; cut++) {
      const err = await decode(encoded.subarray(0, cut), []).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `truncated at ${cut}`).toBeInstanceOf(ChunkedEncodingError);
    }
  });

  it.each([
    ["a size that is not hex", "zz\r\nabc\r\n0\r\n\r\n", "InvalidChunk", 'malformed aws-chunked chunk header "zz"'],
    ["data longer than declared", "2\r\nabc\r\n0\r\n\r\n", "InvalidChunk", "chunk data is longer than its declared size"],
    ["a bare LF", "3\nabc\r\n0\r\n\r\n", "InvalidChunk", "an aws-chunked line does not end with CRLF"],
    ["bytes after the end", "3\r\nabc\r\n0\r\n\r\nextra", "InvalidChunk", "bytes after the end of the aws-chunked body"],
    ["an over-long header line", `3;${"x".repeat(300)}=1\r\nabc\r\n0\r\n\r\n`, "InvalidChunk", "an aws-chunked chunk header line is longer than 256 bytes"],
    ["a chunk over 5 GiB", "ffffffffff\r\n", "InvalidChunk", "an aws-chunked chunk of 1099511627775 bytes is larger than 5 GiB"],
    ["a trailer without a colon", "0\r\nnot-a-trailer\r\n\r\n", "InvalidTrailer", 'malformed trailer line "not-a-trailer"'],
    ["a repeated trailer", "0\r\nx-amz-checksum-crc32:a\r\nx-amz-checksum-crc32:b\r\n\r\n", "InvalidTrailer", "trailer x-amz-checksum-crc32 appears twice"],
  ])("rejects %s", async (_name, body, code, message) => {
    await expect(decode(Buffer.from(body), [])).rejects.toMatchObject({ code, message });
  });

  it("in signed mode, rejects a missing, malformed or wrong chunk signature, and a tampered chunk", async () => {
    const payload = Buffer.from("signed payload bytes");
    const good = encode(payload, [8], { signed: true });
    expect((await decode(good, [], verifyBySha)).output.equals(payload)).toBe(true);
    const tampered = Buffer.from(good.toString("latin1").replace("signed p", "signed q"), "latin1");
    await expect(decode(tampered, [], verifyBySha)).rejects.toMatchObject({ code: "SignatureDoesNotMatch" });
    await expect(decode(encode(payload, [8]), [], verifyBySha)).rejects.toMatchObject({ code: "SignatureDoesNotMatch", message: "a chunk of a signed aws-chunked body has no valid chunk-signature" });
    await expect(decode(good, [], { signed: true, verifyChunk: () => false })).rejects.toMatchObject({ message: "an aws-chunked chunk signature does not match" });
  });

  it("keeps memory bounded: a trailer section cannot grow without end", async () => {
    const body = `0\r\n${Array.from({ length: 200 }, (_, i) => `x-amz-meta-${i}:${"v".repeat(30)}\r\n`).join("")}\r\n`;
    await expect(decode(Buffer.from(body), [])).rejects.toMatchObject({ code: "InvalidTrailer", message: "the trailers are longer than 4096 bytes" });
  });
});
