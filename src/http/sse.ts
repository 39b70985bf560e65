import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Delivery, Pitstop } from "../engine/index.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics/index.ts";
import { formatTime } from "../schedule.ts";

/** Options of an SSE delivery stream. */
export interface EventStreamOptions {
  topic: string;
  /** Consumer name of the stream's listener, recorded as `lockedBy` on what it claims. */
  consumer: string;
  /** Most unacked deliveries on this connection. */
  prefetch?: number;
  /** Comment frame interval that keeps proxies from closing an idle stream. */
  heartbeatMs: number;
  log: Logger;
  /** Counts the stream in `pitstop_sse_streams` while it is open. */
  metrics?: Metrics;
}

/** One `message` event: the delivery as single-line JSON data, the message id as the event id. */
function messageFrame(d: Delivery): string {
  const data = JSON.stringify({ id: d.id, message: d.message, attempt: d.attempt, token: d.token, at: formatTime(d.at), deadline: formatTime(d.lockedUntil) });
  return `event: message\ndata: ${data}\nid: ${d.id}\n\n`;
}

/**
 * A `text/event-stream` response: a `: connected as <consumer>` comment, then one `message` event
 * per delivery, with the message id as the event id and `{"id","message","attempt","token","at",
 * "deadline"}` as data (`deadline`: when the lock expires). When the client goes away,
 * everything it was sent but did not ack is released at once. A store error ends the stream (so
 * the client reconnects) instead of leaving it open and silent.
 */
export function eventStream(c: Context, pitstop: Pitstop, options: EventStreamOptions): Response {
  c.header("x-accel-buffering", "no");
  const signal = c.req.raw.signal;
  return streamSSE(c, async (stream) => {
    const listener = pitstop.listen({ topic: options.topic, prefetch: options.prefetch, consumer: options.consumer });
    options.metrics?.sseStreams(1);
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      options.metrics?.sseStreams(-1);
      clearInterval(heartbeat);
      listener.stop().catch((error: unknown) => options.log("error", `releasing what a closed stream on topic "${options.topic}" held failed; it is due again when its lock expires`, error));
    };
    // workerd tells of a gone client through the request's signal, Node by cancelling the body.
    signal.addEventListener("abort", () => stream.abort(), { once: true });
    stream.onAbort(stop);
    const heartbeat = setInterval(() => void stream.write(": heartbeat\n\n"), options.heartbeatMs);
    try {
      await stream.write(`: connected as ${options.consumer}\n\n`);
      for await (const first of listener) {
        // Everything already claimed goes out in one write: a write per frame through the
        // streaming helper's two web streams halves the throughput of a backlog.
        await stream.write([first, ...listener.ready()].map(messageFrame).join(""));
      }
    } catch (error) {
      options.log("error", `SSE stream on topic "${options.topic}" ends after a store error (the client reconnects)`, error);
    } finally {
      stop();
    }
  });
}
