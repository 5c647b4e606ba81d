import type http from "node:http";
import type { Logger } from "../server/logger.js";
import type { StorageMetrics } from "./metrics.js";
import type { OpenObject } from "./store.js";

/** Up to this size a body is read in one call and sent in one write, without a stream. */
const SMALL_OBJECT_BYTES = 256 * 1024;

/**
 * Sends bytes start..end of an opened object as the response body (status and headers already
 * set) and closes it; HEAD and empty objects send none. Small bodies go in one write; large ones
 * through a few reused 1 MiB buffers. If the client leaves or the file breaks mid-way, the status
 * line is already out, so the connection is cut.
 */
export async function sendObjectBytes(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  object: OpenObject,
  range: { start: number; end: number },
  counters: { metrics: StorageMetrics; server: string; log: Logger },
): Promise<void> {
  const { start, end } = range;
  if (req.method === "HEAD" || end < start) {
    await object.close();
    res.end();
    return;
  }
  if (end - start + 1 <= SMALL_OBJECT_BYTES) {
    const bytes = await object.read({ start, end });
    counters.metrics.bytesSent.inc({ server: counters.server }, bytes.length);
    res.end(bytes);
    return;
  }
  try {
    counters.metrics.bytesSent.inc({ server: counters.server }, await object.copyTo(res, { start, end }));
    res.end();
  } catch (err) {
    counters.log.debug({ err, path: (req.url ?? "").split("?")[0] }, "download ended early");
    res.destroy();
  }
}
