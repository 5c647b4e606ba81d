import { crc32c } from "@aws-crypto/crc32c";
import { Crc64Nvme } from "@aws-sdk/crc64-nvme";
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { S3Error } from "./errors.js";
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from "./payload.js";

export type ChecksumType = "COMPOSITE" | "FULL_OBJECT";

/** The digest of a small buffer (a list of part checksums) with an S3 checksum algorithm. */
export async function digestOf(algorithm: ChecksumAlgorithm, data: Buffer): Promise<Buffer> {
  const uint32 = (n: number) => {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(n >>> 0);
    return out;
  };
  switch (algorithm) {
    case "crc32":
      return uint32(crc32(data));
    case "crc32c":
      return uint32(crc32c(data));
    case "crc64nvme": {
      const crc = new Crc64Nvme();
      crc.update(data);
      return Buffer.from(await crc.digest());
    }
    default:
      return createHash(algorithm).update(data).digest();
  }
}

/**
 * S3's composite (checksum-of-checksums) value of a multipart object: the algorithm over the
 * concatenated raw part checksums, base64, then "-" and the number of parts.
 */
export async function compositeChecksum(algorithm: ChecksumAlgorithm, partChecksums: readonly string[]): Promise<string> {
  const raw = Buffer.concat(partChecksums.map((value) => Buffer.from(value, "base64")));
  return `${(await digestOf(algorithm, raw)).toString("base64")}-${partChecksums.length}`;
}

/**
 * The checksum an upload is created with (S3 CreateMultipartUpload: x-amz-checksum-algorithm and
 * x-amz-checksum-type). S3's rules: CRC64NVME is always FULL_OBJECT; SHA-1 and SHA-256 only COMPOSITE;
 * CRC32 and CRC32C either, COMPOSITE by default; a type needs an algorithm.
 */
export function uploadChecksumOf(algorithmHeader: string | undefined, typeHeader: string | undefined): { algorithm?: ChecksumAlgorithm; type?: ChecksumType } {
  const name = algorithmHeader?.trim().toLowerCase();
  const typeName = typeHeader?.trim().toUpperCase();
  if (!name) {
    if (typeName) throw new S3Error("InvalidRequest", "x-amz-checksum-type needs x-amz-checksum-algorithm");
    return {};
  }
  const algorithm = CHECKSUM_ALGORITHMS.find((a) => a === name);
  if (!algorithm) throw new S3Error("InvalidRequest", `Checksum algorithm provided is unsupported: ${name.slice(0, 20)}`);
  if (typeName !== undefined && typeName !== "COMPOSITE" && typeName !== "FULL_OBJECT") throw new S3Error("InvalidRequest", "x-amz-checksum-type must be COMPOSITE or FULL_OBJECT");
  const type: ChecksumType = typeName ?? (algorithm === "crc64nvme" ? "FULL_OBJECT" : "COMPOSITE");
  if (algorithm === "crc64nvme" && type === "COMPOSITE") throw new S3Error("InvalidRequest", "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.");
  if ((algorithm === "sha1" || algorithm === "sha256") && type === "FULL_OBJECT") {
    throw new S3Error("InvalidRequest", `The FULL_OBJECT checksum type cannot be used with the ${algorithm.toUpperCase()} checksum algorithm.`);
  }
  return { algorithm, type };
}

/** The whole-object checksum a Complete request declares in a header, if any (one algorithm at most). */
export function declaredObjectChecksum(header: (name: string) => string | undefined): { algorithm: ChecksumAlgorithm; value: string; type: ChecksumType } | undefined {
  const present = CHECKSUM_ALGORITHMS.filter((a) => header(`x-amz-checksum-${a}`) !== undefined);
  if (present.length > 1) throw new S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  if (present.length === 0) return undefined;
  const algorithm = present[0]!;
  const value = header(`x-amz-checksum-${algorithm}`)!.trim();
  const composite = /-\d{1,5}$/.test(value);
  const declaredType = header("x-amz-checksum-type")?.trim().toUpperCase();
  const type: ChecksumType = declaredType === "COMPOSITE" || declaredType === "FULL_OBJECT" ? declaredType : composite ? "COMPOSITE" : "FULL_OBJECT";
  return { algorithm, value, type };
}
