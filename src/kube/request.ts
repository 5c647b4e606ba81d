import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export interface KubeResponse {
  status: number;
  body: unknown;
  /** The apiserver's Warning headers (admission warnings among them). */
  warnings: string[];
}

export class KubeRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    method: string,
    path: string,
  ) {
    const message = (body as { message?: string } | null)?.message ?? JSON.stringify(body);
    super(`${method} ${path}: HTTP ${status}: ${message}`);
  }
}

/** RFC 7234 warning values (`299 - "text"`, several joined by commas) to their texts. */
export function parseWarningHeader(value: string): string[] {
  return [...value.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"(?: "[^"]*")?/g)].map((m) => m[1]!.replace(/\\(.)/g, "$1"));
}

/** How long one request may take, start to end, before it fails: a stalled connection must not hang its caller. */
export const KUBE_REQUEST_TIMEOUT_MS = 30_000;

/**
 * A plain JSON request to the apiserver with the kubeconfig's credentials. Used where the typed
 * client's model serializer would drop fields it does not model (for example `default` and
 * `x-kubernetes-validations` inside CRD schemas), and where callers need the Warning headers.
 * The whole exchange is bounded by `timeoutMs`; then the socket is destroyed and the call fails.
 */
export async function kubeRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
  timeoutMs = KUBE_REQUEST_TIMEOUT_MS,
): Promise<KubeResponse> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("kubeconfig has no current cluster");
  const url = new URL(path, cluster.server);
  const options: https.RequestOptions = { method, headers: { accept: "application/json", ...(body !== undefined ? { "content-type": contentType } : {}) } };
  await kc.applyToHTTPSOptions(options);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // keep the text
        }
        const warningHeader = res.headers.warning as string | string[] | undefined;
        const warnings = (Array.isArray(warningHeader) ? warningHeader : warningHeader ? [warningHeader] : []).flatMap(parseWarningHeader);
        const status = res.statusCode ?? 0;
        if (status >= 400) reject(new KubeRequestError(status, parsed, method, path));
        else resolve({ status, body: parsed, warnings });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on("close", () => clearTimeout(timer));
    req.on("error", reject);
    req.end(payload);
  });
}

/** GET of one object: its body, or undefined when the apiserver says it does not exist (404). */
export async function kubeGetOptional<T>(kc: KubeConfig, path: string): Promise<T | undefined> {
  try {
    return (await kubeRequest(kc, "GET", path)).body as T;
  } catch (err) {
    if (err instanceof KubeRequestError && err.status === 404) return undefined;
    throw err;
  }
}
