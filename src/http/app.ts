import { Hono } from "hono";
import { cors } from "hono/cors";
import type { Pitstop } from "../engine/index.ts";
import { PitstopError } from "../errors.ts";
import { consoleLogger, type Logger } from "../log.ts";
import type { Metrics } from "../metrics/index.ts";
import { parseBody, readOptionalJson, validJson } from "./body.ts";
import { requireAuth } from "./auth.ts";
import { onError } from "./errors.ts";
import { formatTime } from "../schedule.ts";
import { MAX_BATCH_MESSAGES, ackBody, batchAckBody, batchStoreBody, eventsQuery, extendBody, idParam, listQuery, nackBody, policyBody, previewBody, redriveBody, storeBody, ticketBody, topicParam } from "../api-schemas.ts";
import { openapiHandler, routes as doc } from "./openapi.ts";
import { invalidRequest, valid } from "./schemas.ts";
import { eventStream } from "./sse.ts";
import { ticketSigner, withTickets } from "./ticket.ts";
import { createUi } from "../ui/app.tsx";

/** Options of the HTTP app. */
export interface AppOptions {
  /**
   * When set, every route but `/health` and `/openapi.json` requires `Authorization: Bearer
   * <token>` or the dashboard's token cookie (see `auth.ts`; compared in constant time), or on
   * `GET /events` a ticket from `POST /tickets` (signed with a key derived from the token). A
   * token is made of `A-Z a-z 0-9 . _ ~ + / -`, optionally ending in `=`.
   */
  token?: string;
  /** Largest request body in bytes. @default 1048576 (1 MiB) */
  maxBodyBytes?: number;
  /** SSE heartbeat interval in ms. @default 15000 */
  heartbeatMs?: number;
  /** Where store errors and ended streams are written, one line each. @default consoleLogger */
  log?: Logger;
  /**
   * Browser origins allowed to call the API (`https://app.example.com`): CORS headers for them,
   * preflights answered with 204 before auth. @default none: no CORS headers
   */
  corsOrigins?: string[];
  /** Serves `GET /metrics` (Prometheus text format) from these metrics, and counts SSE streams in them. @default none: no `/metrics` */
  metrics?: Metrics;
  /** A bearer token `/metrics` also accepts (besides `token`), so a scraper needs no API token. */
  metricsToken?: string;
  /** One `debug` line per request (method, path, status, ms). @default false */
  logRequests?: boolean;
}

const notFound = (id: string) => new PitstopError("not_found", `No message with id "${id}".`);

/** The pitstop HTTP API over an engine. Runtime-neutral: only Web-standard APIs. */
export function createApp(pitstop: Pitstop, options: AppOptions = {}) {
  const app = new Hono();
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const log = options.log ?? consoleLogger;

  app.onError(onError(log));

  if (options.logRequests) {
    app.use("*", async (c, next) => {
      const started = performance.now();
      await next();
      log("debug", "request", { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 });
    });
  }
  app.notFound((c) => c.json({ error: "not_found", message: `No route ${c.req.method} ${c.req.path}.` }, 404));

  if (options.corsOrigins?.length) {
    app.use("*", cors({ origin: options.corsOrigins, allowMethods: ["GET", "HEAD", "POST", "PUT", "DELETE"], allowHeaders: ["authorization", "content-type"], maxAge: 600 }));
  }

  // For load balancers: 503 while the store does not answer.
  app.get("/health", doc.health, async (c) => {
    const health = await pitstop.health();
    return c.json(health, health.ok ? 200 : 503);
  });

  const { token, metrics } = options;
  const auth = { tokens: token === undefined ? [] : [token], cookieToken: token };
  if (metrics) {
    const tokens = [token, options.metricsToken].filter((t) => t !== undefined);
    if (tokens.length > 0) app.use("/metrics", requireAuth({ ...auth, tokens }));
    // Registered before the API's auth, so the metrics token alone is enough here.
    app.get("/metrics", async (c) => c.body(await metrics.render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));
  }

  // Public, like /health: it describes the API and holds no data.
  app.get("/openapi.json", openapiHandler(app, { auth: token !== undefined }));

  // The dashboard answers its login form without credentials, so it comes before the API's auth.
  app.route("/ui", createUi(pitstop, { auth: token === undefined ? undefined : auth, metrics, log }));

  if (token !== undefined) {
    const tickets = ticketSigner(token);
    app.use("*", withTickets(tickets, requireAuth(auth), () => pitstop.now()));
    app.post("/tickets", doc.tickets, validJson(ticketBody, maxBody), async (c) => c.json(await tickets.issue(c.req.valid("json"), pitstop.now())));
  }

  app.post("/messages", doc.store, validJson(storeBody, maxBody), async (c) => {
    const { replaced, ...scheduled } = await pitstop.schedule(c.req.valid("json"));
    return c.json(scheduled, replaced ? 200 : 201);
  });

  // Each item is checked and stored on its own: one bad item does not refuse the others.
  app.post("/messages/batch", doc.batch, validJson(batchStoreBody, maxBody * 16), async (c) => {
    const items = c.req.valid("json").messages;
    if (items.length > MAX_BATCH_MESSAGES) {
      throw new PitstopError("payload_too_large", `A batch holds at most ${MAX_BATCH_MESSAGES} messages; this one has ${items.length}. Send it in several.`);
    }
    const parsed = items.map((item) => storeBody.safeParse(item));
    const outcomes = await pitstop.scheduleMany(parsed.flatMap((p) => (p.success ? [p.data] : [])));
    let next = 0;
    const results = parsed.map((p, index) => {
      const outcome = p.success ? outcomes[next++] : { error: invalidRequest(p.error) };
      if ("scheduled" in outcome) return { id: outcome.scheduled.id, status: outcome.scheduled.replaced ? 200 : 201 };
      const { code, message, issues } = outcome.error;
      return { error: code, message, index, ...(issues && { issues }) };
    });
    return c.json({ results });
  });

  app.get("/messages", doc.list, valid("query", listQuery), async (c) => c.json(await pitstop.list(c.req.valid("query"))));

  // Computes a schedule's occurrences without storing anything.
  app.post("/schedules/preview", doc.preview, validJson(previewBody, maxBody), (c) => c.json({ occurrences: pitstop.preview(c.req.valid("json")) }));

  app.get("/messages/:id", doc.get, valid("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const view = await pitstop.get(id);
    if (!view) throw notFound(id);
    return c.json(view);
  });

  app.delete("/messages/:id", doc.remove, valid("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    if (!(await pitstop.remove(id))) throw notFound(id);
    return c.body(null, 204);
  });

  app.post("/messages/:id/ack", doc.ack, valid("param", idParam), validJson(ackBody, maxBody), async (c) => {
    await pitstop.ack(c.req.valid("param").id, c.req.valid("json").token);
    return c.body(null, 204);
  });

  app.post("/messages/:id/nack", doc.nack, valid("param", idParam), validJson(nackBody, maxBody), async (c) => {
    const { token, ...nack } = c.req.valid("json");
    await pitstop.nack(c.req.valid("param").id, token, nack);
    return c.body(null, 204);
  });

  app.post("/messages/:id/extend", doc.extend, valid("param", idParam), validJson(extendBody, maxBody), async (c) => {
    const { token, by } = c.req.valid("json");
    return c.json({ lockedUntil: formatTime(await pitstop.extend(c.req.valid("param").id, token, by)) });
  });

  // The body of a redrive is optional: without one the message is due now.
  app.post("/messages/:id/redrive", doc.redrive, valid("param", idParam), async (c) => {
    const body = await readOptionalJson(c.req.raw, maxBody);
    const { at } = body === undefined ? {} : parseBody(redriveBody, body);
    return c.json(await pitstop.redrive(c.req.valid("param").id, at));
  });

  app.get("/topics", doc.topics, async (c) => c.json({ items: await pitstop.topics() }));

  app.get("/topics/:name", doc.topic, valid("param", topicParam), async (c) => {
    const { name } = c.req.valid("param");
    const topic = await pitstop.topic(name);
    if (!topic) throw new PitstopError("not_found", `No topic "${name}" (it has no messages and no policy).`);
    return c.json(topic);
  });

  app.put("/topics/:name", doc.setPolicy, valid("param", topicParam), validJson(policyBody, maxBody), async (c) =>
    c.json(await pitstop.setPolicy(c.req.valid("param").name, c.req.valid("json"))),
  );

  app.delete("/topics/:name/policy", doc.resetPolicy, valid("param", topicParam), async (c) => {
    await pitstop.resetPolicy(c.req.valid("param").name);
    return c.body(null, 204);
  });

  app.post("/topics/:name/redrive", doc.redriveTopic, valid("param", topicParam), async (c) => c.json({ redriven: await pitstop.redriveTopic(c.req.valid("param").name) }));

  app.delete("/topics/:name/dead", doc.purgeDead, valid("param", topicParam), async (c) => c.json({ removed: await pitstop.purgeDead(c.req.valid("param").name) }));

  app.post("/acks", doc.acks, validJson(batchAckBody, maxBody), async (c) => {
    const outcomes = await pitstop.ackMany(c.req.valid("json").acks);
    const failed = outcomes.filter((o) => o.result !== "ok").map((o) => ({ id: o.id, error: o.result }));
    return c.json({ acked: outcomes.length - failed.length, failed });
  });

  app.get("/events", doc.events, valid("query", eventsQuery), (c) => {
    // Hono runs the GET handler for HEAD and drops the body: a stream here would be a hidden
    // consumer claiming messages nobody reads. HEAD gets the headers only.
    if (c.req.method === "HEAD") return c.body(null, 200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const { topic, prefetch, consumer } = c.req.valid("query");
    return eventStream(c, pitstop, { topic, prefetch, consumer: consumer ?? `sse-${crypto.randomUUID().slice(0, 8)}`, heartbeatMs: options.heartbeatMs ?? 15_000, log, metrics });
  });

  return app;
}
