import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { timingSafeEqual } from "./constant-time.ts";
import { PitstopError } from "./errors.ts";
import type { Pitstop } from "./pitstop.ts";
import { ackBody, batchAckBody, name, nackBody, parseWith, storeBody } from "./schemas.ts";
import { eventStream } from "./sse.ts";
import * as z from "zod";

/** Options of the HTTP app. */
export interface AppOptions {
  /** When set, every route but `/health` requires `Authorization: Bearer <token>`. */
  token?: string;
  /** Largest request body in bytes. @default 1048576 (1 MiB) */
  maxBodyBytes?: number;
  /** SSE heartbeat interval. @default 15000 */
  heartbeatMs?: number;
}

const encoder = new TextEncoder();

/** Bytes of an oversized body still read (and dropped) so the client can read its 413. */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/**
 * Reads a request body as text, refusing one over `maxBytes` with `payload_too_large`. An
 * oversized body is drained (up to a bound) before the error, because a server that answers
 * while the client is still sending makes most clients report a reset instead of the 413.
 */
async function readText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = () => new PitstopError("payload_too_large", `The request body is larger than the limit of ${maxBytes} bytes.`);
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes + DRAIN_LIMIT) throw tooLarge();
  if (!request.body) return "";
  // A declared small body is read whole: runtimes fast-path text() without a web stream.
  if (declared <= maxBytes && !request.headers.has("transfer-encoding")) {
    const text = await request.text();
    if (text.length <= maxBytes) return text;
    if (encoder.encode(text).byteLength <= maxBytes) return text;
    throw tooLarge();
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes + DRAIN_LIMIT) {
      await reader.cancel();
      break;
    }
    if (size <= maxBytes) chunks.push(value);
  }
  if (size > maxBytes) throw tooLarge();
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

const prefetchParam = z.coerce.number().int().min(1).max(100_000).optional();

/** The pitstop HTTP API over an engine. Runtime-neutral: only Web-standard APIs. */
export function createApp(pitstop: Pitstop, options: AppOptions = {}) {
  const app = new Hono();
  const tokenBytes = options.token === undefined ? undefined : encoder.encode(options.token);

  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const readJson = async (request: Request): Promise<unknown> => {
    const text = await readText(request, maxBody);
    try {
      return JSON.parse(text);
    } catch {
      throw new PitstopError("invalid_request", "The request body is not valid JSON.");
    }
  };
  const idParam = (id: string) => parseWith(name("id"), id);

  app.onError((error, c) => {
    if (error instanceof PitstopError) {
      const body = { error: error.code, message: error.message, ...(error.issues && { issues: error.issues }) };
      return c.json(body, error.status as ContentfulStatusCode);
    }
    console.error(error);
    return c.json({ error: "internal", message: "Internal error." }, 500);
  });
  app.notFound((c) => c.json({ error: "not_found", message: `No route ${c.req.method} ${c.req.path}.` }, 404));

  app.get("/health", (c) => c.json({ ok: true, store: pitstop.storeBackend.name }));

  app.use("*", async (c, next) => {
    if (tokenBytes === undefined) return next();
    const header = c.req.header("authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : "";
    if (!timingSafeEqual(encoder.encode(given), tokenBytes)) {
      throw new PitstopError("unauthorized", "Send Authorization: Bearer <token> with the configured PITSTOP_TOKEN.");
    }
    return next();
  });

  app.post("/messages", async (c) => {
    const body = parseWith(storeBody, await readJson(c.req.raw));
    const { replaced, ...scheduled } = await pitstop.schedule(body);
    return c.json(scheduled, replaced ? 200 : 201);
  });

  app.get("/messages/:id", async (c) => {
    const id = idParam(c.req.param("id"));
    const view = await pitstop.get(id);
    if (!view) throw new PitstopError("not_found", `No message with id "${id}".`);
    return c.json(view);
  });

  app.delete("/messages/:id", async (c) => {
    const id = idParam(c.req.param("id"));
    if (!(await pitstop.remove(id))) throw new PitstopError("not_found", `No message with id "${id}".`);
    return c.body(null, 204);
  });

  app.post("/messages/:id/ack", async (c) => {
    const id = idParam(c.req.param("id"));
    const { token } = parseWith(ackBody, await readJson(c.req.raw));
    await pitstop.ack(id, token);
    return c.body(null, 204);
  });

  app.post("/messages/:id/nack", async (c) => {
    const id = idParam(c.req.param("id"));
    const { token, ...nack } = parseWith(nackBody, await readJson(c.req.raw));
    await pitstop.nack(id, token, nack);
    return c.body(null, 204);
  });

  app.post("/acks", async (c) => {
    const { acks } = parseWith(batchAckBody, await readJson(c.req.raw));
    const outcomes = await pitstop.ackMany(acks);
    const failed = outcomes.filter((o) => o.result !== "ok").map((o) => ({ id: o.id, error: o.result }));
    return c.json({ acked: outcomes.length - failed.length, failed });
  });

  app.get("/events", (c) => {
    const topic = c.req.query("topic") ?? "default";
    parseWith(name("topic"), topic);
    const prefetch = parseWith(prefetchParam, c.req.query("prefetch"));
    return eventStream(pitstop, { topic, prefetch, heartbeatMs: options.heartbeatMs, signal: c.req.raw.signal });
  });

  return app;
}
