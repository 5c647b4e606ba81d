/** A Velero server version as read from its image tag: v1.18.2, 1.17.0-rc.1, v1.16.2@sha256:… */
export interface VeleroVersion {
  major: number;
  minor: number;
  patch: number;
  prerelease: string | undefined;
  text: string;
}

export function parseVeleroVersion(text: string): VeleroVersion | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0), prerelease: match[4], text: text.trim() };
}

/** The tag of an image reference (digest dropped); undefined for untagged or `latest`. */
export function imageTag(image: string): string | undefined {
  const withoutDigest = image.split("@", 1)[0]!;
  const lastSlash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.indexOf(":", lastSlash + 1);
  if (colon < 0) return undefined;
  const tag = withoutDigest.slice(colon + 1);
  return tag === "latest" ? undefined : tag;
}

/** Is `version` at least major.minor? Pre-releases of that minor count (1.17.0-rc.1 is "1.17"). */
export function atLeast(version: VeleroVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}
