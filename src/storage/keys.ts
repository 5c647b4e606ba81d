/**
 * Which bucket names and object keys the store accepts. Objects are plain files, so a key must map to
 * exactly one path below its bucket and never reach outside it: the rules are about path safety and
 * filesystem limits, each with a message that says what to change.
 */

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** NAME_MAX on Linux filesystems (ext4, xfs, NFS): one path segment. */
export const MAX_SEGMENT_BYTES = 255;

/**
 * S3 bucket naming (3-63 characters: lowercase letters, digits, '.', '-'; letter or digit at both
 * ends; no '..'; not an IP address). Every such name is also a safe directory name, and none can
 * start with '.', so buckets can never reach the store's hidden internal folder or `lost+found`.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `bucket name "${printable(name)}" must be 3 to 63 characters long`;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return `bucket name "${printable(name)}" may contain only lowercase letters, digits, '.' and '-', and must start and end with a letter or digit`;
  if (name.includes("..")) return `bucket name "${name}" must not contain ".."`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return `bucket name "${name}" must not look like an IP address`;
  return undefined;
}

/**
 * The file that stands for a folder-marker key (`dir/`, what rclone --s3-directory-markers and "create
 * folder" in S3 browsers write): `<bucket>/dir/.app-snapshots-folder`. Objects are plain files, so
 * `dir/` cannot be a file named `dir` (that would clash with the folder holding `dir/x`); inside the
 * folder it coexists with every key below it. The name is reserved: no key may have it as a segment,
 * so no key's file can be mistaken for a marker, nor a marker for an object of its own.
 */
export const FOLDER_MARKER = ".app-snapshots-folder";

/** Why `key` cannot be stored, or undefined when it can. */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return "the key is empty";
  if (!key.isWellFormed()) return "the key is not valid Unicode (it contains an unpaired surrogate)";
  if (key.includes("\0")) return "the key contains a NUL character";
  if (key.startsWith("/")) return "the key starts with '/'";
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_KEY_BYTES) return `the key is ${bytes} bytes long; the limit is ${MAX_KEY_BYTES}`;
  // A folder marker ("a/b/") is stored in its folder: the segments before the slash follow the usual rules.
  const segments = (key.endsWith("/") ? key.slice(0, -1) : key).split("/");
  for (const [index, segment] of segments.entries()) {
    const position = `segment ${index + 1}`;
    if (segment === "") return `the key has an empty ${position} ('//')`;
    if (segment === "." || segment === "..") return `the key's ${position} is "${segment}"; '.' and '..' segments are not allowed`;
    if (segment === FOLDER_MARKER) return `the key's ${position} is "${FOLDER_MARKER}", the name the store reserves for folder markers`;
    const segmentBytes = Buffer.byteLength(segment);
    if (segmentBytes > MAX_SEGMENT_BYTES) return `the key's ${position} is ${segmentBytes} bytes long; the filesystem limit is ${MAX_SEGMENT_BYTES}`;
  }
  return undefined;
}

/** Keys and names in messages: control characters shown escaped, long ones cut. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return escaped.length > 80 ? `${escaped.slice(0, 77)}...` : escaped;
}
