import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Logger } from "../log.ts";

/** Options of {@link statsStream}. */
export interface StatsStreamOptions {
  /** How often the panels are rendered again (and sent when they changed). */
  intervalMs: number;
  /** Longest silence before a comment frame keeps proxies from closing the stream. */
  heartbeatMs: number;
  log: Logger;
}

/**
 * The dashboard's stats stream: a `panels` event with the live panels as HTML at once, then again
 * whenever they change (looked at every `intervalMs`). It only reads (`render` lists and counts),
 * so it never claims a message, unlike `/events`. A store error ends it; the page's EventSource
 * reconnects.
 */
export function statsStream(c: Context, render: () => Promise<string>, options: StatsStreamOptions): Response {
  c.header("x-accel-buffering", "no");
  const signal = c.req.raw.signal;
  return streamSSE(c, async (stream) => {
    // workerd tells of a gone client through the request's signal, Node by cancelling the body.
    signal.addEventListener("abort", () => stream.abort(), { once: true });
    let last: string | undefined;
    let sentAt = Date.now();
    while (!stream.aborted) {
      let html: string;
      try {
        html = await render();
      } catch (error) {
        options.log("error", "dashboard stream ends after a store error (the page reconnects)", error);
        return;
      }
      if (html !== last) {
        await stream.writeSSE({ event: "panels", data: html });
        last = html;
        sentAt = Date.now();
      } else if (Date.now() - sentAt >= options.heartbeatMs) {
        await stream.write(": heartbeat\n\n");
        sentAt = Date.now();
      }
      await stream.sleep(options.intervalMs);
    }
  });
}
