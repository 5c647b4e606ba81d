import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { once } from "node:events";

/** controller-runtime's cap for an AdmissionReview: two 3 MB objects plus 1 MB of envelope. */
export const MAX_REQUEST_BODY_BYTES = 7 * 1024 * 1024;
/** Above the 90 s idle timeout of the apiserver's Go client, so we never close a connection it is about to reuse. */
export const KEEP_ALIVE_TIMEOUT_MS = 95_000;
/** Node requires headersTimeout above keepAliveTimeout, or idle sockets are cut with a 408. */
export const HEADERS_TIMEOUT_MS = 100_000;
/** A whole request (headers and body) must arrive within this. */
export const REQUEST_TIMEOUT_MS = 120_000;

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

export interface ListenOptions {
  handler: http.RequestListener;
  port: number;
  /** Everything binds to loopback unless told otherwise (the chart passes 0.0.0.0 inside the pod). */
  host?: string;
  tls?: TlsMaterial;
  /**
   * Ask TLS clients for a certificate, verified against `tls.ca` but not refused at the handshake, so
   * the handler can answer why (requireClientCertificate in clientAuth.ts).
   */
  clientCertificates?: boolean;
  /** Override REQUEST_TIMEOUT_MS (0: none), e.g. for multi-GiB uploads. */
  requestTimeoutMs?: number;
  /** Request line plus headers, in bytes (Node's default: 16 KiB). */
  maxHeaderSize?: number;
  /** Cut a connection that sends and receives nothing for this long (stalled uploads); 0: never. */
  idleTimeoutMs?: number;
  /**
   * Requests with `Expect: 100-continue` reach the handler before "100 Continue" is sent; it calls
   * res.writeContinue() once it wants the body (so a refused upload is never transferred).
   */
  deferContinue?: boolean;
}

export interface RunningServer {
  readonly server: http.Server;
  readonly port: number;
  readonly url: string;
  /** Requests being served right now. */
  inFlight(): number;
  /** Swap certificate and key for new connections; open connections keep theirs. */
  setTls(tls: TlsMaterial): void;
  /**
   * Keep serving, but end every connection with its next response (Connection: close). Called when readiness turns
   * false: a keep-alive client (the apiserver's pooled connection to this pod, which outlives the endpoint's removal)
   * then reconnects through the Service to a ready pod, instead of sending on a connection close() later cuts.
   */
  drain(): void;
  /**
   * Stop accepting, let in-flight requests finish (their connections then close), close idle
   * keep-alive connections at once, and cut whatever is left after `graceMs`.
   */
  close(graceMs: number): Promise<void>;
}

export async function listen(options: ListenOptions): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const serverOptions: http.ServerOptions = {
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
    ...(options.maxHeaderSize ? { maxHeaderSize: options.maxHeaderSize } : {}),
  };
  const server = options.tls
    ? https.createServer({ ...serverOptions, ...tlsOptions(options.tls), ...(options.clientCertificates ? { requestCert: true, rejectUnauthorized: false } : {}) }, options.handler)
    : http.createServer(serverOptions, options.handler);
  // Set both explicitly rather than rely on createServer's options, which older Node releases ignored.
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  if (options.idleTimeoutMs) server.timeout = Math.max(options.idleTimeoutMs, 1);
  if (options.deferContinue) server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => server.emit("request", req, res));

  const busy = new Map<Socket, number>();
  const responses = new Set<http.ServerResponse>();
  let closing = false;
  let draining = false;
  // Tell the client this connection ends with the response, so it does not reuse it and see an EOF.
  const markLast = (res: http.ServerResponse) => {
    if (!res.headersSent) res.setHeader("connection", "close");
  };
  // A TLS server's requests carry the TLS socket, reported on "secureConnection", not the raw one.
  server.on(options.tls ? "secureConnection" : "connection", (socket: Socket) => {
    busy.set(socket, 0);
    socket.once("close", () => busy.delete(socket));
  });
  // Before the handler (registered at creation), so a draining server marks the response before it is sent.
  server.prependListener("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    responses.add(res);
    if (closing || draining) markLast(res);
    res.once("close", () => {
      responses.delete(res);
      const left = (busy.get(socket) ?? 1) - 1;
      busy.set(socket, left);
      if ((closing || draining) && left === 0) socket.destroySoon();
    });
  });

  server.listen(options.port, host);
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls ? "https" : "http";
  const urlHost = hostForUrl(host);

  return {
    server,
    port,
    url: `${scheme}://${urlHost}:${port}`,
    inFlight: () => [...busy.values()].reduce((sum, n) => sum + n, 0),
    setTls(tls) {
      if (!(server instanceof https.Server)) throw new Error("setTls on a plain-HTTP server");
      server.setSecureContext(tlsOptions(tls));
    },
    drain() {
      draining = true;
      for (const res of responses) markLast(res);
    },
    async close(graceMs) {
      if (!server.listening) return;
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of responses) markLast(res);
      for (const [socket, n] of busy) if (n === 0) socket.destroySoon();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      try {
        await closed;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function tlsOptions(tls: TlsMaterial): https.ServerOptions {
  return { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}), minVersion: "TLSv1.2" };
}

/** An address as it appears in a URL: IPv6 literals in brackets. */
export function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
