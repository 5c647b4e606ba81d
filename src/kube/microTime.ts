/** Kubernetes' MicroTime format (RFC 3339 with exactly six fraction digits, which the apiserver requires). */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, "000Z");
