import { parseResponse, RawConnection, type RawResponse } from "../../s3/inspect.js";

/** How long a server may take to answer (or close) once the request is complete: far above any real answer. */
export const DEADLINE_MS = 10_000;
/** How long a request whose framing may be incomplete gets before the client half-closes. */
const GRACE_MS = 50;

export interface Exchanged {
  /** The first response, or undefined when the server closed without one. */
  response?: RawResponse;
  /** Every status the server sent on the connection (pipelined leftovers of a mutated request included). */
  statuses: number[];
}

/**
 * Sends raw bytes on a fresh connection and waits for the server to answer or close. A request
 * whose framing may be incomplete (mutated) is half-closed after a short grace, so a server waiting
 * for more body bytes sees the end of them. Neither an answer nor a close by the deadline is a hang.
 */
export async function exchange(port: number, bytes: Buffer, options: { complete: boolean; head?: boolean }): Promise<Exchanged> {
  const connection = await RawConnection.connect(port);
  try {
    void connection.write(bytes);
    let outcome = await settle(connection, options.head ?? false, options.complete ? DEADLINE_MS : GRACE_MS);
    if (outcome === "pending" && !options.complete) {
      connection.end();
      outcome = await settle(connection, options.head ?? false, DEADLINE_MS);
    }
    if (outcome === "pending") throw new Error(`no answer and no close within ${DEADLINE_MS} ms (received ${JSON.stringify(connection.received.toString("latin1").slice(0, 200))})`);
    const statuses = [...connection.received.toString("latin1").matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
    return { ...(outcome === "closed" ? {} : { response: outcome }), statuses };
  } finally {
    connection.destroy();
  }
}

async function settle(connection: RawConnection, head: boolean, ms: number): Promise<RawResponse | "closed" | "pending"> {
  const deadline = Date.now() + ms;
  for (;;) {
    const parsed = parseResponse(connection.received, head, connection.closed);
    if (parsed) return parsed;
    if (connection.closed) return "closed";
    const left = deadline - Date.now();
    if (left <= 0) return "pending";
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        connection.socket.off("data", done);
        connection.socket.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, left);
      connection.socket.once("data", done);
      connection.socket.once("close", done);
    });
  }
}
