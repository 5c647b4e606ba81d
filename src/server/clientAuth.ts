import type http from "node:http";
import type { TLSSocket } from "node:tls";
import type { Logger } from "./logger.js";
import { sendJson } from "./json.js";

/** Why a caller is refused: 401 without a certificate our CA verifies, 403 for a name not on the list. */
export type ClientVerdict = { ok: true; name: string } | { ok: false; status: 401 | 403; message: string };

/** What the check needs from a TLS socket (a plain object in unit tests). */
export interface PeerView {
  authorized: boolean;
  /** Whether the client sent a certificate at all (Node reports a missing one as an issuer error). */
  presented: boolean;
  authorizationError?: string | Error | null | undefined;
  /** The subject's CN and the SAN DNS names of the verified client certificate. */
  names: string[];
}

export function peerView(socket: TLSSocket): PeerView {
  const cert = socket.getPeerCertificate();
  const cn = cert?.subject?.CN;
  const names = [
    ...(Array.isArray(cn) ? cn : cn ? [cn] : []),
    ...(cert?.subjectaltname ?? "")
      .split(", ")
      .filter((entry) => entry.startsWith("DNS:"))
      .map((entry) => entry.slice(4)),
  ];
  const presented = cert !== null && cert !== undefined && Object.keys(cert).length > 0;
  return { authorized: socket.authorized, presented, authorizationError: socket.authorizationError, names };
}

/**
 * Whether a caller may use the webhook: its certificate must chain to --client-ca and carry one of
 * the allowed names as CN or DNS SAN. A CA such as the cluster's signs many client certificates
 * (kubelets, users), so the name is what singles out the apiserver.
 */
export function judgeClient(peer: PeerView, allowedNames: readonly string[]): ClientVerdict {
  if (!peer.authorized) {
    const why = !peer.presented ? "no client certificate" : peer.authorizationError ? String(peer.authorizationError) : "not verified";
    return { ok: false, status: 401, message: `a client certificate signed by the webhook's client CA is required (${why})` };
  }
  const name = peer.names.find((n) => allowedNames.includes(n));
  if (name === undefined) return { ok: false, status: 403, message: `client certificate for ${JSON.stringify(peer.names[0] ?? "")} is not allowed to call this webhook` };
  return { ok: true, name };
}

/**
 * Wraps a handler so only callers judgeClient accepts reach it; others get a plain JSON 401/403
 * (not an AdmissionReview: they are not the apiserver). The server must request certificates
 * without rejecting at the handshake (ListenOptions.clientCertificates) so the refusal can say why.
 */
export function requireClientCertificate(handler: http.RequestListener, allowedNames: readonly string[], log: Logger): http.RequestListener {
  return (req, res) => {
    const verdict = judgeClient(peerView(req.socket as TLSSocket), allowedNames);
    if (verdict.ok) {
      handler(req, res);
      return;
    }
    log.warn({ remote: req.socket.remoteAddress, path: req.url, status: verdict.status, reason: verdict.message }, "caller refused");
    // The body may be large; the connection is not reused.
    res.setHeader("connection", "close");
    sendJson(res, verdict.status, { message: verdict.message });
  };
}
