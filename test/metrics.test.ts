import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { createLogger } from "../src/log.ts";
import { createMetrics } from "../src/metrics/index.ts";
import { ConfigError, readConfig } from "../src/runtimes/config.ts";
import { assemble } from "../src/runtimes/compose.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { webhookDeliverer } from "../src/webhook/deliver.ts";
import { manualClock } from "./support/clock.ts";
import { jsonClient, viaApp } from "./support/http.ts";
import { parseExposition, type Family } from "./support/prometheus.ts";

const T0 = Date.parse("2026-05-01T08:00:00Z");

function setup(options: { token?: string; metricsToken?: string } = {}) {
  const clock = manualClock(T0);
  const pitstop = createPitstop({ store: memoryStore(), clock, lockTime: "PT30S" });
  const metrics = createMetrics(pitstop);
  const app = createApp(pitstop, { ...options, metrics });
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const call = jsonClient("", { headers, transport: viaApp(app) });
  const scrape = async (token = options.token) => {
    const response = await app.request("/metrics", { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(await response.text());
  };
  return { clock, pitstop, app, call, metrics, scrape };
}

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  families.get(name.replace(/_(bucket|sum|count)$/, ""))?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe("GET /metrics", () => {
  it("serves every metric in the text format: counters from the engine's events, counts from the store, lateness histograms", async () => {
    const { pitstop, clock, scrape, metrics } = setup();
    const odd = 'we"ird\\topic';
    await pitstop.schedule({ message: { id: "a" }, topic: odd });
    await pitstop.schedule({ message: { id: "b" }, topic: odd, at: T0 + 2000 });
    await pitstop.schedule({ message: { id: "c" }, topic: "jobs", maxAttempts: 1 });
    clock.advance(2500);
    const delivered = await pitstop.claim({ topic: odd, limit: 10 });
    expect(delivered.map((d) => d.id).sort()).toEqual(["a", "b"]);
    await delivered[0]!.ack();
    await delivered[1]!.nack({ retryIn: 0 });
    const [c] = await pitstop.claim({ topic: "jobs", limit: 1 });
    await c!.nack({ error: "boom" });
    metrics.webhookCall("200", 0.02);
    metrics.webhookCall("error", 31);

    const families = await scrape();
    for (const [name, type] of [
      ["pitstop_messages", "gauge"],
      ["pitstop_deliveries_total", "counter"],
      ["pitstop_acks_total", "counter"],
      ["pitstop_nacks_total", "counter"],
      ["pitstop_expired_total", "counter"],
      ["pitstop_dead_total", "counter"],
      ["pitstop_delivery_lateness_seconds", "histogram"],
      ["pitstop_webhook_duration_seconds", "histogram"],
      ["pitstop_sse_streams", "gauge"],
      ["pitstop_store_errors_total", "counter"],
    ]) {
      expect(families.get(name!)?.type, name).toBe(type);
    }
    expect(value(families, "pitstop_deliveries_total", { topic: odd, transport: "listener" })).toBe(2);
    expect(value(families, "pitstop_acks_total")).toBe(1);
    expect(value(families, "pitstop_nacks_total")).toBe(2);
    expect(value(families, "pitstop_dead_total")).toBe(1);
    expect(value(families, "pitstop_expired_total")).toBe(0);
    expect(value(families, "pitstop_messages", { topic: odd, state: "pending" })).toBe(1);
    expect(value(families, "pitstop_messages", { topic: "jobs", state: "dead" })).toBe(1);
    // a: 2.5 s late, b: 0.5 s late.
    expect(value(families, "pitstop_delivery_lateness_seconds_bucket", { topic: odd, le: "0.001" })).toBe(0);
    expect(value(families, "pitstop_delivery_lateness_seconds_bucket", { topic: odd, le: "0.5" })).toBe(1);
    expect(value(families, "pitstop_delivery_lateness_seconds_bucket", { topic: odd, le: "2.5" })).toBe(2);
    expect(value(families, "pitstop_delivery_lateness_seconds_bucket", { topic: odd, le: "60" })).toBe(2);
    expect(value(families, "pitstop_delivery_lateness_seconds_sum", { topic: odd })).toBe(3);
    expect(value(families, "pitstop_webhook_duration_seconds_bucket", { code: "error", le: "30" })).toBe(0);
    expect(value(families, "pitstop_webhook_duration_seconds_count", { code: "error" })).toBe(1);
    expect(value(families, "pitstop_webhook_duration_seconds_bucket", { code: "200", le: "0.025" })).toBe(1);
  });

  it("caches the store's counts for a few seconds", async () => {
    const { pitstop, clock, scrape } = setup();
    await pitstop.schedule({ message: { id: "a" } });
    expect(value(await scrape(), "pitstop_messages", { topic: "default", state: "pending" })).toBe(1);
    await pitstop.schedule({ message: { id: "b" } });
    expect(value(await scrape(), "pitstop_messages", { topic: "default", state: "pending" })).toBe(1);
    clock.advance(5000);
    expect(value(await scrape(), "pitstop_messages", { topic: "default", state: "pending" })).toBe(2);
  });

  it("counts webhook calls by status through the deliverer's onCall", async () => {
    const { pitstop, metrics, scrape } = setup();
    await pitstop.schedule({ message: { id: "w" }, callback: "https://example.com/hook" });
    const deliver = webhookDeliverer(pitstop, { fetch: async () => new Response(null, { status: 503 }), onCall: metrics.webhookCall, log: () => {} });
    const [d] = await pitstop.claim({ webhooks: true, limit: 1 });
    expect(await deliver(d!)).toBe("failed");
    const families = await scrape();
    expect(value(families, "pitstop_webhook_duration_seconds_count", { code: "503" })).toBe(1);
    expect(value(families, "pitstop_deliveries_total", { topic: "default", transport: "webhook" })).toBe(1);
  });

  it("takes the API token or its own metrics token; the metrics token opens nothing else", async () => {
    const { app, scrape } = setup({ token: "api", metricsToken: "scraper" });
    expect((await app.request("/metrics")).status).toBe(401);
    expect((await app.request("/metrics", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    await scrape("api");
    await scrape("scraper");
    expect((await app.request("/topics", { headers: { authorization: "Bearer scraper" } })).status).toBe(401);
  });

  it("counts open SSE streams", async () => {
    const { app, scrape } = setup();
    const response = await app.request("/events?topic=t");
    const reader = response.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^: connected as /);
    expect(value(await scrape(), "pitstop_sse_streams")).toBe(1);
    await reader.cancel();
    await expect.poll(async () => value(await scrape(), "pitstop_sse_streams"), { timeout: 5000 }).toBe(0);
  });

  it("is absent when the app has no metrics", async () => {
    const pitstop = createPitstop({ store: memoryStore() });
    expect((await createApp(pitstop).request("/metrics")).status).toBe(404);
  });
});

describe("lateness", () => {
  it("shows a message's last delivery, a retry measured from its retry time", async () => {
    const { pitstop, clock, call } = setup();
    await pitstop.schedule({ message: { id: "m" }, at: T0 + 1000 });
    clock.advance(1250);
    const [first] = await pitstop.claim({ limit: 1, consumer: "puller" });
    expect((await call("GET", "/messages/m")).json).toMatchObject({
      lastDelivery: { at: "2026-05-01T08:00:01.000Z", emittedAt: "2026-05-01T08:00:01.250Z", lateMs: 250, attempt: 1, consumer: "puller" },
    });
    await first!.nack({ retryIn: 10_000 });
    clock.advance(10_040);
    const [second] = await pitstop.claim({ limit: 1 });
    expect(second!.attempt).toBe(2);
    const view = (await call("GET", "/messages/m")).json as { lastDelivery: Record<string, unknown> };
    expect(view.lastDelivery).toEqual({ at: "2026-05-01T08:00:01.000Z", emittedAt: "2026-05-01T08:00:11.290Z", lateMs: 40, attempt: 2 });
  });

  it("summarizes a topic's lateness over the window in GET /topics/:name", async () => {
    const { pitstop, clock, call } = setup();
    for (let i = 0; i < 100; i++) await pitstop.schedule({ message: { id: `m${i}` }, topic: "t", at: T0 - i });
    await pitstop.claim({ topic: "t", limit: 100 });
    expect((await call("GET", "/topics/t")).json).toMatchObject({ lateness: { p50: 49, p90: 89, p99: 98, max: 99, count: 100 } });
    clock.advance(15 * 60_000);
    expect((await call("GET", "/topics/t")).json).toMatchObject({ lateness: { count: 0 } });
  });

  it("records nothing when turned off", async () => {
    const pitstop = createPitstop({ store: memoryStore(), recordLateness: false });
    await pitstop.schedule({ message: { id: "m" }, topic: "t" });
    await pitstop.claim({ topic: "t", limit: 1 });
    expect((await pitstop.get("m"))?.lastDelivery).toBeUndefined();
    expect((await pitstop.topic("t"))?.lateness).toBeUndefined();
  });
});

describe("logs", () => {
  it("writes one JSON object a line with time, level and msg, dropping lines below the level", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "json", level: "info", write: (line) => lines.push(line), now: () => T0 });
    log("debug", "hidden");
    log("info", "started", { port: 8080 });
    log("error", "store failed", new Error("down"));
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { time: "2026-05-01T08:00:00.000Z", level: "info", msg: "started", port: 8080 },
      { time: "2026-05-01T08:00:00.000Z", level: "error", msg: "store failed", error: "down" },
    ]);
  });

  it("writes readable lines in pretty format, debug included at that level", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "pretty", level: "debug", write: (line) => lines.push(line), now: () => T0 });
    log("debug", "request", { method: "GET", path: "/a b" });
    expect(lines).toEqual(['2026-05-01T08:00:00.000Z DEBUG request method=GET path="/a b"']);
  });

  it("reads PITSTOP_LOG_FORMAT and PITSTOP_LOG_LEVEL, refusing other values", () => {
    expect(readConfig({}).log).toEqual({ level: "info" });
    expect(readConfig({ PITSTOP_LOG_FORMAT: "pretty", PITSTOP_LOG_LEVEL: "debug" }).log).toEqual({ format: "pretty", level: "debug" });
    expect(() => readConfig({ PITSTOP_LOG_LEVEL: "verbose" })).toThrow(ConfigError);
    expect(() => readConfig({ PITSTOP_LOG_FORMAT: "xml" })).toThrow(/PITSTOP_LOG_FORMAT=xml is invalid/);
  });

  it("logs each request at debug from the composition root, in JSON when not on a TTY", async () => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      const { app, pitstop } = assemble(readConfig({ PITSTOP_LOG_LEVEL: "debug" }), memoryStore());
      expect((await app.request("/topics")).status).toBe(200);
      await pitstop.close();
    } finally {
      console.log = original;
    }
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ level: "debug", msg: "request", method: "GET", path: "/topics", status: 200 });
  });
});
