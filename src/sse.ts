import type { Pitstop } from "./pitstop.ts";
import { formatTime } from "./schedule.ts";

/** Options of an SSE delivery stream. */
export interface EventStreamOptions {
  topic?: string;
  /** Most unacked deliveries on this connection. */
  prefetch?: number;
  /** Comment frame interval that keeps proxies from closing an idle stream. @default 15000 */
  heartbeatMs?: number;
  /** Aborts when the client goes away. */
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

/**
 * A `text/event-stream` response: one `message` event per delivery, with the message id as
 * the event id and `{"id","message","attempt","token","at"}` as data. When the client goes
 * away, everything it was sent but did not ack is released at once.
 */
export function eventStream(pitstop: Pitstop, options: EventStreamOptions): Response {
  const listener = pitstop.listen({ topic: options.topic, prefetch: options.prefetch });
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const finish = () => {
    clearInterval(heartbeat);
    void listener.stop();
  };
  options.signal?.addEventListener("abort", finish, { once: true });

  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(": connected\n\n"));
      heartbeat = setInterval(() => {
        try {
          controller.enqueue(encoder.encode(": heartbeat\n\n"));
        } catch {
          finish();
        }
      }, options.heartbeatMs ?? 15_000);
      void (async () => {
        try {
          for await (const d of listener) {
            const data = JSON.stringify({ id: d.id, message: d.msg, attempt: d.attempt, token: d.token, at: formatTime(d.at) });
            controller.enqueue(encoder.encode(`event: message\nid: ${d.id}\ndata: ${data}\n\n`));
          }
          finish();
          controller.close();
        } catch {
          finish();
        }
      })();
    },
    cancel: finish,
  });

  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}
