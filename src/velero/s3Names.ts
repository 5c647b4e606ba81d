/** Real-AWS bucket naming rules (general purpose buckets). */
export function s3BucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return "must be 3 to 63 characters long";
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) return "may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit";
  if (bucket.includes("..")) return "must not contain two dots in a row";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return "must not look like an IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(bucket) || /(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(bucket)) return "uses a prefix or suffix AWS reserves";
  return undefined;
}

/** http(s)://host[:port] and nothing else: kopia and minio-go reject a path in the endpoint. */
export function endpointProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL; use http(s)://host[:port]`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `"${text}" must start with http:// or https://`;
  if (url.username || url.password) return "must not carry credentials; use the credential Secret";
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return `"${text}" has a path or query; use http(s)://host[:port] (kopia rejects a path in s3Url)`;
  return undefined;
}
