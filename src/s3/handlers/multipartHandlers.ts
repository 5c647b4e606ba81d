import { keyProblem, printable } from "../../storage/keys.js";
import { copySourceRange, parseCopySource } from "../copySource.js";
import { errorElements } from "../errorDocument.js";
import { S3Error, toS3Error } from "../errors.js";
import { checkPartNumber, type RequestedPart } from "../multipart.js";
import { declaredObjectChecksum, uploadChecksumOf } from "../multipartChecksums.js";
import { CHECKSUM_ALGORITHMS, incomingBody, type ChecksumAlgorithm } from "../payload.js";
import { writeConditionOf } from "../preconditions.js";
import { param } from "../routing.js";
import { listOf, parseXml, textOf, xmlDocument, type XmlNode } from "../xml.js";
import { continueUpload, INITIATOR, OWNER, readSmallBody, sendXml, type Handler, type RequestContext } from "./context.js";
import { DEFAULT_KEEP_ALIVE, KeepAliveAnswer } from "./keepAlive.js";
import { maxKeysOf } from "./listingHandlers.js";
import { openCopySource } from "./objectHandlers.js";
import { contentHeadersOf, refuseUnsupportedWriteHeaders, setChecksumHeaders, userMetadataOf } from "./objectHeaders.js";

export const MULTIPART_HANDLERS = {
  CreateMultipartUpload: async (c) => {
    refuseUnsupportedWriteHeaders(c);
    const checksum = uploadChecksumOf(c.header("x-amz-checksum-algorithm"), c.header("x-amz-checksum-type"));
    const uploadId = await c.options.backend.createMultipartUpload({
      bucket: c.route.bucket,
      key: keyChecked(c),
      contentType: c.header("content-type") ?? undefined,
      contentEncoding: c.header("content-encoding") ?? undefined,
      contentHeaders: contentHeadersOf(c.header),
      userMetadata: userMetadataOf(c.req),
      ...(checksum.algorithm ? { checksumAlgorithm: checksum.algorithm, checksumType: checksum.type } : {}),
    });
    if (checksum.algorithm) {
      c.res.setHeader("x-amz-checksum-algorithm", checksum.algorithm.toUpperCase());
      c.res.setHeader("x-amz-checksum-type", checksum.type!);
    }
    sendXml(c, 200, "InitiateMultipartUploadResult", [
      ["Bucket", c.route.bucket],
      ["Key", c.route.key],
      ["UploadId", uploadId],
    ]);
  },

  UploadPart: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const partNumber = Number(param(c.route.query, "partNumber"));
    checkPartNumber(partNumber);
    // Refuse unknown uploads before the body is sent (Expect: 100-continue).
    const record = await c.options.backend.getMultipartUpload(c.route.bucket, c.route.key, uploadId);
    // A part of an upload created with a checksum algorithm gets that checksum even when the client sends none.
    const incoming = incomingBody({ header: c.header, stream: c.req }, c.auth, c.options.backend.maxObjectBytes, uploadAlgorithm(record.checksumAlgorithm));
    continueUpload(c);
    const result = await c.options.backend.uploadPart(c.route.bucket, c.route.key, uploadId, partNumber, incoming.body, incoming.options);
    c.options.metrics.bytesReceived.inc({ server: "s3" }, result.size);
    c.res.setHeader("etag", `"${result.etag}"`);
    setChecksumHeaders(c.res, result.checksums);
    c.res.end();
  },

  UploadPartCopy: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const partNumber = Number(param(c.route.query, "partNumber"));
    checkPartNumber(partNumber);
    const source = parseCopySource(c.header("x-amz-copy-source")!);
    const record = await c.options.backend.getMultipartUpload(c.route.bucket, c.route.key, uploadId);
    await readSmallBody(c);
    const object = await openCopySource(c, source);
    let range: { start: number; end: number };
    try {
      range = copySourceRange(c.header("x-amz-copy-source-range"), object.info.size);
      if (range.end - range.start + 1 > c.options.backend.maxObjectBytes) {
        throw new S3Error("InvalidArgument", `a part may be at most ${c.options.backend.maxObjectBytes} bytes; copy a smaller x-amz-copy-source-range`);
      }
    } catch (err) {
      await object.close();
      throw err;
    }
    const algorithm = uploadAlgorithm(record.checksumAlgorithm);
    const checksums: Record<string, string> = {};
    const result = await c.options.backend.uploadPartCopy(c.route.bucket, c.route.key, uploadId, partNumber, object, range, {
      expectedSize: range.end - range.start + 1,
      digests: algorithm ? [algorithm] : [],
      checksums,
      verify: ({ digests }) => {
        if (algorithm) checksums[algorithm] = digests[algorithm]!.toString("base64");
      },
    });
    sendXml(c, 200, "CopyPartResult", [
      ["LastModified", result.lastModified.toISOString()],
      ["ETag", `"${result.etag}"`],
      ...checksumElements(result.checksums),
    ]);
  },

  CompleteMultipartUpload: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const condition = writeConditionOf(c.header("if-match"), c.header("if-none-match"));
    const checksum = declaredObjectChecksum(c.header);
    const doc = parseXml(await readSmallBody(c), "CompleteMultipartUpload");
    const parts = listOf(doc, "Part").map((part): RequestedPart => {
      const number = textOf(part, "PartNumber")?.trim();
      const etag = textOf(part, "ETag")?.trim();
      if (!number || !/^\d{1,5}$/.test(number) || !etag) throw new S3Error("MalformedXML", "every Part needs a PartNumber (1-10000) and an ETag");
      const checksums: Record<string, string> = {};
      for (const algorithm of CHECKSUM_ALGORITHMS) {
        const value = textOf(part, `Checksum${algorithm.toUpperCase()}`);
        if (value !== undefined) checksums[algorithm] = value.trim();
      }
      return { partNumber: Number(number), etag, checksums };
    });
    const answer = new KeepAliveAnswer(c.res, c.options.completeKeepAlive ?? DEFAULT_KEEP_ALIVE);
    try {
      const result = await c.options.backend.completeMultipartUpload(c.route.bucket, c.route.key, uploadId, parts, {
        condition,
        checksum,
        onAssemble: () => answer.start(),
      });
      answer.finish(
        xmlDocument("CompleteMultipartUploadResult", [
          ["Location", `/${c.route.bucket}/${c.route.key}`],
          ["Bucket", c.route.bucket],
          ["Key", c.route.key],
          ["ETag", `"${result.etag}"`],
          ...checksumElements(result.checksums),
          ["ChecksumType", result.checksumType],
        ]),
      );
    } catch (err) {
      answer.stop();
      if (!answer.started) throw err;
      // The 200 is out: the error goes in the body, as S3 sends it.
      const error = toS3Error(err);
      c.options.log.warn({ requestId: c.requestId, operation: "CompleteMultipartUpload", code: error.code, reason: error.message, err: error.status >= 500 ? err : undefined }, "S3 request failed after its 200 was sent; the error went in the body");
      answer.fail(error, (e) => xmlDocument("Error", errorElements(e, { bucket: c.route.bucket, key: c.route.key, resource: `/${c.route.bucket}/${c.route.key}` }, c.requestId), null));
    }
  },

  AbortMultipartUpload: async (c) => {
    await c.options.backend.abortMultipartUpload(c.route.bucket, c.route.key, param(c.route.query, "uploadId") ?? "");
    c.res.statusCode = 204;
    c.res.end();
  },

  ListParts: async (c) => {
    const uploadId = param(c.route.query, "uploadId") ?? "";
    const maxParts = maxKeysOf(c.route.query, "max-parts");
    const marker = Number(param(c.route.query, "part-number-marker") ?? "0");
    if (!Number.isInteger(marker) || marker < 0) throw new S3Error("InvalidArgument", "part-number-marker must be a part number");
    const { record, parts } = await c.options.backend.listParts(c.route.bucket, c.route.key, uploadId);
    const after = parts.filter((p) => p.partNumber > marker);
    const page = after.slice(0, maxParts);
    const truncated = after.length > page.length;
    sendXml(c, 200, "ListPartsResult", [
      ["Bucket", c.route.bucket],
      ["Key", c.route.key],
      ["UploadId", uploadId],
      INITIATOR,
      OWNER,
      ["StorageClass", "STANDARD"],
      ["PartNumberMarker", marker],
      ["NextPartNumberMarker", page.at(-1)?.partNumber ?? marker],
      ["MaxParts", maxParts],
      ["IsTruncated", truncated],
      ["ChecksumAlgorithm", record.checksumAlgorithm?.toUpperCase()],
      ["ChecksumType", record.checksumType],
      ...page.map(
        (p): XmlNode => [
          "Part",
          [["PartNumber", p.partNumber], ["LastModified", p.lastModified.toISOString()], ["ETag", `"${p.etag}"`], ["Size", p.size], ...checksumElements(p.checksums)],
        ],
      ),
    ]);
  },
} satisfies Record<string, Handler>;

/** Checksum<ALGORITHM> elements, as S3 names them. */
function checksumElements(checksums: Record<string, string>): XmlNode[] {
  return Object.entries(checksums)
    .filter(([algorithm]) => (CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm))
    .map(([algorithm, value]): XmlNode => [`Checksum${algorithm.toUpperCase()}`, value]);
}

function uploadAlgorithm(name: string | undefined): ChecksumAlgorithm | undefined {
  const lower = name?.toLowerCase();
  return CHECKSUM_ALGORITHMS.find((a) => a === lower);
}

/** Multipart keys are checked at Create, not only when the object is assembled. */
function keyChecked(c: RequestContext): string {
  const problem = keyProblem(c.route.key);
  if (problem) throw new S3Error("InvalidArgument", `invalid key "${printable(c.route.key)}": ${problem}`);
  return c.route.key;
}
