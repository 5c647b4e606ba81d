import fc from "fast-check";

/** Bytes that matter to the parsers under test: framing, separators, encodings, numbers at their limits. */
const TOKENS = [
  "\r\n", "\r\n\r\n", "\n", "\r", "\0", " ", "\t", "%", "%00", "%zz", "%2F", "%2e%2e", "&", "=", "?", "/", "..", ";", ":", ",", "\"", "'",
  "0", "-1", "1e3", "00000000000000000000", "99999999999999999999", "ffffffffffffffff", "0x10", "NaN",
  "<", ">", "<?x?>", "<!--", "]]>", "<![CDATA[", "&amp;", "&#0;", "&x;", "\u00ff", "\u{1f600}", "\ufffd",
  "chunk-signature=", "x-amz-checksum-crc32:", "content-length: 0\r\n", "transfer-encoding: chunked\r\n",
];

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "duplicate"; at: number; length: number }
  | { kind: "truncate"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.oneof(fc.constantFrom(...TOKENS).map((t) => new Uint8Array(Buffer.from(t))), fc.uint8Array({ minLength: 1, maxLength: 16 })),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

/** One to four byte-level mutations (positions are taken modulo the input's length). */
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 });
export type Mutations = Mutation[];

export function applyMutations(input: Buffer, list: readonly Mutation[]): Buffer {
  let bytes = input;
  for (const m of list) {
    const at = m.at % (bytes.length + 1);
    switch (m.kind) {
      case "flip":
        if (bytes.length === 0) break;
        bytes = Buffer.from(bytes);
        bytes[at % bytes.length]! ^= 1 << m.bit;
        break;
      case "insert":
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case "delete":
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]);
        break;
      case "duplicate":
        bytes = Buffer.concat([bytes.subarray(0, at + m.length), bytes.subarray(at, at + m.length), bytes.subarray(at + m.length)]);
        break;
      case "truncate":
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}
