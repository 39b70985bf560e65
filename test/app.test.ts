import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { manualClock } from "./support/clock.ts";
import { jsonClient, viaApp } from "./support/http.ts";
import { ConfigError, readConfig } from "../src/runtimes/config.ts";

const T0 = Date.parse("2026-05-01T08:00:00Z");

function setup(options: { token?: string; maxBodyBytes?: number; corsOrigins?: string[] } = {}) {
  const clock = manualClock(T0);
  const store = memoryStore();
  const pitstop = createPitstop({ store, clock, lockTime: "PT30S" });
  const app = createApp(pitstop, options);
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const call = jsonClient("", { headers, transport: viaApp(app) });
  return { clock, pitstop, app, call, store };
}

describe("POST /messages", () => {
  it("creates (201) then replaces (200), normalizing times and intervals", async () => {
    const { call } = setup();
    const first = await call("POST", "/messages", { message: { id: "m1", a: 1 }, at: "2026-05-01T10:00:00+02:00", interval: 500, end: T0 + 10_000, topic: "jobs" });
    expect(first).toEqual({ status: 201, json: { id: "m1", at: "2026-05-01T08:00:00.000Z", interval: "PT0.5S", tz: "UTC", missed: "once", end: "2026-05-01T08:00:10.000Z", topic: "jobs" } });
    const second = await call("POST", "/messages", { message: { id: "m1", a: 2 }, at: T0 + 5 });
    expect(second).toEqual({ status: 200, json: { id: "m1", at: "2026-05-01T08:00:00.005Z", topic: "default" } });
    expect((await call("GET", "/messages/m1")).json).toEqual({
      id: "m1",
      message: { id: "m1", a: 2 },
      at: "2026-05-01T08:00:00.005Z",
      topic: "default",
      attempts: 0,
      state: "pending",
      locked: false,
    });
  });

  it("assigns a UUID v4 when the message has no id, and defaults at to now", async () => {
    const { call } = setup();
    const { status, json } = await call("POST", "/messages", { message: { x: 1 } });
    expect(status).toBe(201);
    expect(json.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(json.at).toBe(new Date(T0).toISOString());
  });

  it.each([
    ["bad JSON", "{", /not valid JSON/],
    ["no message", { at: T0 }, /message/],
    ["message not an object", { message: [1, 2] }, /message/],
    ["unknown field", { message: {}, when: T0 }, /Unrecognized key/],
    ["date without offset", { message: {}, at: "2026-05-01T10:00:00" }, /at must be an ISO-8601 timestamp/],
    ["fractional epoch", { message: {}, at: 1.5 }, /at must be/],
    ["bad interval", { message: {}, interval: "1 hour" }, /interval must be an ISO-8601 duration/],
    ["zero interval", { message: {}, interval: 0 }, /interval/],
    ["end without interval", { message: {}, end: T0 + 1 }, /end requires an interval/],
    ["end before at", { message: {}, at: T0, interval: "PT1S", end: T0 - 1 }, /end must not be before at/],
    ["id with control characters", { message: { id: "a\u0000b" } }, /control characters/],
    ["id too long", { message: { id: "x".repeat(257) } }, /at most 256/],
    ["numeric id", { message: { id: 5 } }, /id must be a string/],
    ["empty topic", { message: {}, topic: "" }, /topic must not be empty/],
    ["non-http callback", { message: {}, callback: "ftp://example.com/x" }, /callback must be an absolute http\(s\) URL/],
  ])("rejects %s with 400 invalid_request and stores nothing", async (_, body, message) => {
    const { call, store } = setup();
    await call("POST", "/messages", { message: { id: "keep" }, at: T0 + 1000 });
    const response = await call("POST", "/messages", body);
    expect(response.status).toBe(400);
    expect(response.json.error).toBe("invalid_request");
    expect(response.json.message).toMatch(message);
    expect(await store.nextDueAt("topic:default")).toBe(T0 + 1000);
    expect((await call("GET", "/messages/keep")).json.at).toBe(new Date(T0 + 1000).toISOString());
  });

  it("lists every validation issue with its path", async () => {
    const { call } = setup();
    const { json } = await call("POST", "/messages", { message: { id: "" }, extra: 1, topic: 7 });
    expect(json.issues.map((i: { path: unknown[] }) => i.path.join("."))).toEqual(expect.arrayContaining(["message.id", "topic", ""]));
  });

  it("refuses a body over the limit with 413 and stores nothing", async () => {
    const { call } = setup({ maxBodyBytes: 1000 });
    const response = await call("POST", "/messages", { message: { id: "big", pad: "x".repeat(2000) } });
    expect(response).toMatchObject({ status: 413, json: { error: "payload_too_large", message: expect.stringMatching(/1000 bytes/) } });
    expect((await call("GET", "/messages/big")).status).toBe(404);
  });
});

describe("acks over HTTP", () => {
  it("acks, nacks and reports lock_lost and not_found with the right statuses", async () => {
    const { call, pitstop, clock } = setup();
    await call("POST", "/messages", { message: { id: "a" } });
    const [d] = await pitstop.claim({ limit: 1 });
    expect(await call("POST", "/messages/a/ack", { token: "wrong" })).toMatchObject({ status: 409, json: { error: "lock_lost" } });
    expect(await call("POST", "/messages/a/nack", { token: d.token, retryIn: "soon" })).toMatchObject({ status: 400 });
    expect((await call("GET", "/messages/a")).json).toMatchObject({ locked: true, attempts: 1 });
    expect((await call("POST", "/messages/a/nack", { token: d.token, error: "nope", retryIn: "PT5S" })).status).toBe(204);
    expect((await call("GET", "/messages/a")).json).toMatchObject({ locked: false, lastError: "nope" });
    clock.advance(5000);
    const [again] = await pitstop.claim({ limit: 1 });
    expect((await call("POST", "/messages/a/ack", { token: again.token })).status).toBe(204);
    expect(await call("POST", "/messages/a/ack", { token: again.token })).toMatchObject({ status: 404, json: { error: "not_found" } });
  });

  it("validates before looking up: a bad body on an unknown id is 400", async () => {
    const { call } = setup();
    expect((await call("POST", "/messages/unknown/ack", { token: 5 })).status).toBe(400);
    expect((await call("POST", "/messages/unknown/nack", { token: "t", extra: 1 })).status).toBe(400);
    expect((await call("POST", "/messages/unknown/ack", { token: "t" })).status).toBe(404);
  });

  it("acks a batch in one request and lists what failed", async () => {
    const { call, pitstop } = setup();
    for (const id of ["x", "y", "z"]) await call("POST", "/messages", { message: { id } });
    const ds = await pitstop.claim({ limit: 10 });
    const acks = [...ds.map((d) => ({ id: d.id, token: d.token })), { id: "ghost", token: "t" }, { id: "x", token: "bad" }];
    const response = await call("POST", "/acks", { acks });
    expect(response).toEqual({ status: 200, json: { acked: 3, failed: [{ id: "ghost", error: "not_found" }, { id: "x", error: "lock_lost" }] } });
    expect((await call("POST", "/acks", { acks: [] })).status).toBe(400);
  });
});

describe("POST /messages/:id/extend", () => {
  it("moves the lock's expiry, keeps the token, and shows who holds the lock", async () => {
    const { call, pitstop, clock } = setup();
    await call("POST", "/messages", { message: { id: "long" } });
    const [d] = await pitstop.claim({ limit: 1, consumer: "puller" });
    expect((await call("GET", "/messages/long")).json).toMatchObject({ locked: true, lockedBy: "puller", lockedUntil: "2026-05-01T08:00:30.000Z" });
    expect(await call("POST", "/messages/long/extend", { token: d.token, by: "PT2M" })).toEqual({ status: 200, json: { lockedUntil: "2026-05-01T08:02:00.000Z" } });
    clock.advance(60_000);
    // Without `by`, the engine's lock time (30 s) from now.
    expect(await call("POST", "/messages/long/extend", { token: d.token })).toEqual({ status: 200, json: { lockedUntil: "2026-05-01T08:01:30.000Z" } });
    expect(await call("POST", "/messages/long/extend", { token: d.token, by: 5000 })).toEqual({ status: 200, json: { lockedUntil: "2026-05-01T08:01:05.000Z" } });
    expect((await call("GET", "/messages/long")).json).toMatchObject({ locked: true, lockedBy: "puller", lockedUntil: "2026-05-01T08:01:05.000Z", attempts: 1 });
    expect(await pitstop.claim({ limit: 1 })).toEqual([]);
    expect((await call("POST", "/messages/long/ack", { token: d.token })).status).toBe(204);
  });

  it("answers 400 for a bad body, 404 for a missing message, 409 lock_lost for a stale or expired token", async () => {
    const { call, pitstop, clock } = setup();
    await call("POST", "/messages", { message: { id: "e" } });
    const [d] = await pitstop.claim({ limit: 1 });
    for (const body of [{ token: d.token, by: "soon" }, { token: d.token, by: 0 }, { token: d.token, by: "P1M" }, { by: "PT1M" }, { token: d.token, extra: 1 }]) {
      expect(await call("POST", "/messages/e/extend", body)).toMatchObject({ status: 400, json: { error: "invalid_request" } });
    }
    expect(await call("POST", "/messages/e/extend", { token: "stale" })).toMatchObject({ status: 409, json: { error: "lock_lost" } });
    expect(await call("POST", "/messages/none/extend", { token: d.token })).toMatchObject({ status: 404, json: { error: "not_found" } });
    clock.advance(30_000);
    expect(await call("POST", "/messages/e/extend", { token: d.token })).toMatchObject({ status: 409, json: { error: "lock_lost" } });
    expect((await call("GET", "/messages/e")).json).toEqual({ id: "e", message: { id: "e" }, at: "2026-05-01T08:00:00.000Z", topic: "default", attempts: 1, state: "pending", locked: false,
      lastDelivery: { at: "2026-05-01T08:00:00.000Z", emittedAt: "2026-05-01T08:00:00.000Z", lateMs: 0, attempt: 1 },
    });
  });
});

describe("auth", () => {
  it("requires the bearer token on every route but /health", async () => {
    const { app, call } = setup({ token: "tok" });
    expect((await jsonClient("", { transport: viaApp(app) })("GET", "/health")).status).toBe(200);
    const wrong = jsonClient("", { headers: { authorization: "Bearer nope" }, transport: viaApp(app) });
    for (const [method, path] of [["GET", "/messages/a"], ["POST", "/messages"], ["DELETE", "/messages/a"], ["GET", "/events"], ["POST", "/acks"]]) {
      const response = await wrong(method, path);
      expect(response.status).toBe(401);
      expect(response.json).toMatchObject({ error: "unauthorized" });
    }
    const ok = await call("GET", "/messages/a");
    expect(ok.status).toBe(404);
  });
});

describe("GET /events", () => {
  it("streams exact frames: a connected comment, then one message event per delivery", async () => {
    const { app, call } = setup();
    await call("POST", "/messages", { message: { id: "f1", v: "ü" }, topic: "t" });
    const controller = new AbortController();
    const response = await app.request("/events?topic=t&consumer=worker%201", { signal: controller.signal });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.endsWith("id: f1\n\n")) text += (await reader.read()).value;
    const frame = /^: connected as worker 1\n\nevent: message\ndata: (.*)\nid: f1\n\n$/.exec(text);
    expect(text.startsWith(": connected as worker 1\n\n")).toBe(true);
    const data = JSON.parse(frame![1]);
    expect(data).toEqual({
      id: "f1",
      message: { id: "f1", v: "ü" },
      attempt: 1,
      token: expect.any(String),
      at: new Date(T0).toISOString(),
      deadline: new Date(T0 + 30_000).toISOString(),
    });
    expect((await call("GET", "/messages/f1")).json).toMatchObject({ locked: true, lockedBy: "worker 1", lockedUntil: new Date(T0 + 30_000).toISOString() });
    controller.abort();
  });

  it("sends a heartbeat comment while idle", async () => {
    const clock = manualClock(T0);
    const app = createApp(createPitstop({ clock }), { heartbeatMs: 50 });
    const controller = new AbortController();
    const response = await app.request("/events", { signal: controller.signal });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes(": heartbeat\n\n")) text += (await reader.read()).value;
    expect(text).toMatch(/^: connected as sse-[0-9a-f]{8}\n\n: heartbeat\n\n$/);
    controller.abort();
  });

  it("rejects a bad topic, prefetch or consumer with 400", async () => {
    const { call } = setup();
    expect((await call("GET", "/events?prefetch=0")).status).toBe(400);
    expect(await call("GET", "/events?consumer=")).toMatchObject({ status: 400, json: { message: expect.stringMatching(/consumer must not be empty/) } });
    expect((await call("GET", "/events?consumer=a%0Ab")).status).toBe(400);
    expect((await call("GET", "/events?topic=" + "x".repeat(300))).status).toBe(400);
  });
});

it("answers unknown routes with a JSON 404", async () => {
  const { call } = setup();
  expect(await call("GET", "/nope")).toMatchObject({ status: 404, json: { error: "not_found" } });
});

describe("CORS", () => {
  const preflight = (origin: string) => ({ method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" } });

  it("answers an allowed origin's preflight with 204, before auth, and marks its answers", async () => {
    const { app } = setup({ token: "s3cret", corsOrigins: ["https://app.example.com", "http://localhost:5173"] });
    const answer = await app.request("/messages", preflight("http://localhost:5173"));
    expect(answer.status).toBe(204);
    expect(answer.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(answer.headers.get("access-control-allow-methods")).toBe("GET,HEAD,POST,PUT,DELETE");
    expect(answer.headers.get("access-control-allow-headers")).toBe("authorization,content-type");
    const get = await app.request("/messages/x", { headers: { origin: "https://app.example.com", authorization: "Bearer s3cret" } });
    expect(get.status).toBe(404);
    expect(get.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(get.headers.get("vary")).toMatch(/origin/i);
  });

  it("gives a refused origin no CORS headers", async () => {
    const { app } = setup({ corsOrigins: ["https://app.example.com"] });
    const answer = await app.request("/messages", preflight("https://evil.example"));
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
    const get = await app.request("/health", { headers: { origin: "https://evil.example" } });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("is off without origins: the preflight is a 404 as before", async () => {
    const { app } = setup();
    const answer = await app.request("/messages", preflight("https://app.example.com"));
    expect(answer.status).toBe(404);
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("reads PITSTOP_CORS_ORIGINS", () => {
    expect(readConfig({}).corsOrigins).toBeUndefined();
    expect(readConfig({ PITSTOP_CORS_ORIGINS: "https://app.example.com, http://localhost:5173" }).corsOrigins).toEqual(["https://app.example.com", "http://localhost:5173"]);
    expect(() => readConfig({ PITSTOP_CORS_ORIGINS: "https://app.example.com/path" })).toThrow(ConfigError);
    expect(() => readConfig({ PITSTOP_CORS_ORIGINS: "*" })).toThrow(/PITSTOP_CORS_ORIGINS=\* is invalid: "\*" is not an origin/);
  });
});
