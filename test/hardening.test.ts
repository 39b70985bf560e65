import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { callbackChecker, createPitstop, startWebhookLoop, type Pitstop } from "../src/index.ts";
import type { Logger } from "../src/log.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { manualClock } from "./support/clock.ts";
import { flakyStore, type FlakyStore } from "./support/flaky-store.ts";
import { jsonClient, serveInProcess, viaApp } from "./support/http.ts";
import { startReceiver } from "./support/receiver.ts";
import { openSse } from "./support/sse.ts";

const T0 = Date.parse("2026-05-01T08:00:00Z");

/** A logger that keeps its lines, and resolves `waitFor` once a line matches. */
function capturingLog() {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const log: Logger = (level, message, detail) => {
    lines.push(`${level} ${message}${detail === undefined ? "" : `: ${detail instanceof Error ? detail.message : String(detail)}`}`);
    for (const w of waiters.splice(0)) (lines.some((l) => w.pattern.test(l)) ? w.resolve() : waiters.push(w));
  };
  const waitFor = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      if (lines.some((l) => pattern.test(l))) return resolve();
      const timer = setTimeout(() => reject(new Error(`no log line like ${pattern} within ${timeoutMs} ms; last lines ${JSON.stringify(lines.slice(-3))}`)), timeoutMs);
      waiters.push({ pattern, resolve: () => (clearTimeout(timer), resolve()) });
    });
  return { lines, log, waitFor };
}

function setup(options: { token?: string; maxBodyBytes?: number; real?: boolean } = {}) {
  const clock = manualClock(T0);
  const store = flakyStore(memoryStore());
  const { lines, log, waitFor } = capturingLog();
  const pitstop = createPitstop({ store, lockTime: "PT30S", log, ...(options.real ? {} : { clock }) });
  const app = createApp(pitstop, { token: options.token, maxBodyBytes: options.maxBodyBytes, log, heartbeatMs: 60_000 });
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const call = jsonClient("", { headers, transport: viaApp(app) });
  return { clock, store, pitstop, app, call, lines, waitFor };
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function served(app: ReturnType<typeof createApp>, pitstop: Pitstop) {
  const server = await serveInProcess(app.fetch);
  closers.push(() => pitstop.close(), () => server.close());
  return server;
}

describe("a failing store", () => {
  it("answers 503 store_unavailable, never 204, to an ack or nack whose write fails, and logs it", async () => {
    const { call, pitstop, store, lines } = setup();
    await call("POST", "/messages", { message: { id: "m" } });
    const [d] = await pitstop.claim({ limit: 1 });
    store.failing.add("settle");
    const ack = await call("POST", "/messages/m/ack", { token: d.token });
    expect(ack).toMatchObject({ status: 503, json: { error: "store_unavailable", message: expect.stringMatching(/settle: disk on fire/) } });
    const nack = await call("POST", "/messages/m/nack", { token: d.token, retryIn: 0 });
    expect(nack.status).toBe(503);
    expect((await call("POST", "/acks", { acks: [{ id: "m", token: d.token }] })).status).toBe(503);
    expect(lines.filter((l) => /^error POST \/messages\/m\/(ack|nack) answered 503/.test(l))).toHaveLength(2);
    store.failing.clear();
    expect((await call("GET", "/messages/m")).json).toMatchObject({ locked: true, attempts: 1 });
    expect((await call("POST", "/messages/m/ack", { token: d.token })).status).toBe(204);
  });

  it("answers /health 503 with ok:false and the reason while the store does not answer", async () => {
    const { call, store } = setup();
    expect(await call("GET", "/health")).toEqual({ status: 200, json: { ok: true, store: "memory" } });
    store.failing.add("ping");
    expect(await call("GET", "/health")).toEqual({ status: 503, json: { ok: false, store: "memory", reason: expect.stringMatching(/ping: disk on fire/) } });
    store.failing.clear();
    expect((await call("GET", "/health")).status).toBe(200);
  });

  it("ends an SSE stream after a store error, so its client reconnects, and logs why", async () => {
    const { app, pitstop, store, call, waitFor } = setup({ real: true });
    const server = await served(app, pitstop);
    const sse = await openSse(`${server.url}/events?topic=t`);
    closers.push(async () => sse.close());
    expect((await sse.nextFrame()).comment).toMatch(/^connected as sse-[0-9a-f]{8}$/);
    store.failing.add("claim");
    await call("POST", "/messages", { message: { id: "m" }, topic: "t" });
    await expect(sse.nextFrame()).rejects.toThrow(/SSE stream (ended|aborted)/);
    await waitFor(/^error SSE stream on topic "t" ends after a store error/);
    store.failing.clear();
    const again = await openSse(`${server.url}/events?topic=t`);
    closers.push(async () => again.close());
    expect(await again.nextDelivery()).toMatchObject({ id: "m", attempt: 1 });
  });

  it("survives a closing stream whose release fails: one log line, no unhandled rejection, the lock then expires", async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    closers.push(async () => process.off("unhandledRejection", onRejection));
    const { app, pitstop, store, call, waitFor } = setup({ real: true });
    const server = await served(app, pitstop);
    const sse = await openSse(`${server.url}/events?topic=held`);
    for (let i = 0; i < 5; i++) await call("POST", "/messages", { message: { id: `m${i}` }, topic: "held" });
    await sse.nextDelivery();
    store.failing.add("settle");
    sse.close();
    await waitFor(/^error releasing what a closed stream on topic "held" held failed/);
    expect(rejections).toEqual([]);
    store.failing.clear();
    expect(await call("GET", "/health")).toMatchObject({ status: 200 });
    expect((await call("GET", "/messages/m0")).json).toMatchObject({ locked: true });
  });

  it("the webhook loop logs a failing store and delivers once it answers again", async () => {
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    const store = flakyStore(memoryStore());
    const { log, waitFor } = capturingLog();
    const checkCallback = callbackChecker({ allowPrivate: true });
    const pitstop = createPitstop({ store, log, checkCallback });
    closers.push(() => pitstop.close());
    await pitstop.schedule({ message: { id: "w" }, callback: receiver.url() });
    store.failing.add("claim");
    const loop = startWebhookLoop(pitstop, { log, checkCallback, retryDelayMs: 50 });
    closers.push(() => loop.stop());
    await waitFor(/^error webhook deliveries failed: The memory store failed \(claim\): claim: disk on fire/);
    store.failing.clear();
    await receiver.waitFor(1);
    expect(JSON.parse(receiver.received[0].body)).toMatchObject({ id: "w", attempt: 1 });
  });
});

describe("HEAD /events", () => {
  it("answers the stream's headers and opens no listener", async () => {
    const { app, call } = setup();
    await call("POST", "/messages", { message: { id: "m" } });
    for (let i = 0; i < 3; i++) {
      const response = await app.request("/events", { method: "HEAD" });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/event-stream");
      expect(await response.text()).toBe("");
    }
    expect((await call("GET", "/messages/m")).json).toMatchObject({ locked: false, attempts: 0 });
  });
});

describe("what a message may be", () => {
  const nested = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${"}".repeat(depth - 1)}`;
  const post = (app: ReturnType<typeof createApp>, body: string, type = "application/json") =>
    app.request("/messages", { method: "POST", headers: { "content-type": type }, body });

  it("accepts a message nested 64 levels deep and refuses 65 (or 4,100) with 400, storing nothing", async () => {
    const { app, call } = setup();
    expect((await post(app, `{"message":{"id":"deep","x":${nested(63)}}}`)).status).toBe(201);
    for (const depth of [65, 4_100]) {
      const response = await post(app, `{"message":{"id":"deeper","x":${nested(depth - 1)}}}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_request", message: expect.stringMatching(/more than 64 levels deep/) });
    }
    expect((await call("GET", "/messages/deeper")).status).toBe(404);
  });

  it("refuses in the library too, without a stack overflow", async () => {
    const { pitstop } = setup();
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    await expect(pitstop.store({ id: "deep", deep })).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("round-trips a top-level __proto__ key exactly, over HTTP and SSE", async () => {
    const { app, pitstop, call } = setup({ real: true });
    const body = '{"id":"p","__proto__":{"admin":true},"y":2}';
    expect((await post(app, `{"message":${body},"topic":"proto"}`)).status).toBe(201);
    const view = await app.request("/messages/p");
    expect(JSON.stringify(JSON.parse(await view.text()).message)).toBe(body);
    const server = await served(app, pitstop);
    const sse = await openSse(`${server.url}/events?topic=proto`);
    closers.push(async () => sse.close());
    const d = await sse.nextDelivery();
    expect(JSON.stringify(d.message)).toBe(body);
    expect((await call("POST", "/messages/p/ack", { token: d.token })).status).toBe(204);
  });

  it.each([
    ["a lone high surrogate", "x\ud800"],
    ["a lone low surrogate", "x\udfff"],
    [".", "."],
    ["..", ".."],
  ])("refuses an id with %s, storing nothing", async (_kind, id) => {
    const { app, pitstop } = setup();
    const response = await post(app, JSON.stringify({ message: { id } }));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_request", issues: [{ path: ["message", "id"] }] });
    await expect(pitstop.store({ id })).rejects.toMatchObject({ code: "invalid_request" });
    expect((await pitstop.claim({ limit: 10 })).length).toBe(0);
  });

  it("keeps ids that are well-formed Unicode addressable by path, a slash or a replacement character included", async () => {
    const { call } = setup();
    for (const id of ["a/b", "x\ufffd", "😀 ok", "%2F"]) {
      expect((await call("POST", "/messages", { message: { id } })).status).toBe(201);
      expect((await call("GET", `/messages/${encodeURIComponent(id)}`)).json).toMatchObject({ id });
    }
  });

  it("refuses a recurring schedule whose next occurrence is past the supported time range", async () => {
    const { call, pitstop } = setup();
    for (const body of [
      { message: { id: "far" }, interval: 8_639_000_000_000_000 },
      { message: { id: "far" }, at: 8_640_000_000_000_000 - 10, interval: "PT1S" },
    ]) {
      const response = await call("POST", "/messages", body);
      expect(response).toMatchObject({ status: 400, json: { error: "invalid_request", issues: [{ path: ["interval"] }] } });
    }
    expect(await pitstop.get("far")).toBeUndefined();
  });

  it.each([
    ["text/plain", "text/plain"],
    ["form data", "application/x-www-form-urlencoded"],
    ["no content type", undefined],
  ])("refuses a body sent as %s with 415, storing nothing", async (_kind, type) => {
    const { app, call } = setup();
    const headers: Record<string, string> = type === undefined ? {} : { "content-type": type };
    const response = await app.request("/messages", { method: "POST", headers, body: '{"message":{"id":"csrf"}}' });
    expect(response.status).toBe(415);
    expect(await response.json()).toEqual({ error: "unsupported_media_type", message: expect.stringMatching(/content-type: application\/json/) });
    expect((await call("GET", "/messages/csrf")).status).toBe(404);
  });

  it("takes a body of exactly the limit and refuses one byte more with 413", async () => {
    const limit = 200;
    const { app, call } = setup({ maxBodyBytes: limit });
    const body = (id: string, size: number) => {
      const bare = JSON.stringify({ message: { id, pad: "" } });
      return JSON.stringify({ message: { id, pad: "é".repeat(0) + "x".repeat(size - bare.length) } });
    };
    expect(new TextEncoder().encode(body("fits", limit)).length).toBe(limit);
    expect((await post(app, body("fits", limit))).status).toBe(201);
    const over = await post(app, body("over", limit + 1));
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ error: "payload_too_large" });
    expect((await call("GET", "/messages/over")).status).toBe(404);
  });
});

describe("request bodies over a Node server", () => {
  /** POSTs `chunks` with node:http: with a content-length, or chunked (no length) when `chunked`. */
  const send = (url: string, chunks: string[], chunked: boolean) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const length = chunked ? {} : { "content-length": String(Buffer.byteLength(chunks.join(""))) };
      const req = request(`${url}/messages`, { method: "POST", headers: { "content-type": "application/json", ...length } }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      });
      req.on("error", reject);
      for (const chunk of chunks) req.write(chunk);
      req.end();
    });

  it("reads a body with a length and a chunked one alike, and refuses either over the limit with 413", async () => {
    const { app, pitstop, call } = setup({ maxBodyBytes: 100, real: true });
    const { url } = await served(app, pitstop);
    const parts = ['{"message":', '{"id":"', "sized", '"}}'];
    expect((await send(url, parts, false)).status).toBe(201);
    expect((await send(url, parts.map((p) => p.replace("sized", "chunked")), true)).status).toBe(201);
    const big = ['{"message":{"id":"big","pad":"', "x".repeat(120), '"}}'];
    for (const chunked of [false, true]) expect(JSON.parse((await send(url, big, chunked)).text)).toMatchObject({ error: "payload_too_large" });
    expect((await call("GET", "/messages/sized")).status).toBe(200);
    expect((await call("GET", "/messages/chunked")).status).toBe(200);
    expect((await call("GET", "/messages/big")).status).toBe(404);
  });
});

describe("retries", () => {
  it.each([0, "PT0S"])("takes retryIn %o as 'retry now'", async (retryIn) => {
    const { call, pitstop } = setup();
    await call("POST", "/messages", { message: { id: "m" } });
    const [d] = await pitstop.claim({ limit: 1 });
    expect((await call("POST", "/messages/m/nack", { token: d.token, retryIn, error: "later" })).status).toBe(204);
    const [again] = await pitstop.claim({ limit: 1 });
    expect(again).toMatchObject({ id: "m", attempt: 2 });
  });

  it("backs off 1 s, 2 s, 4 s … up to the lock time, and clears lastError on a nack without one and on ack", async () => {
    const { clock, store, pitstop } = setup();
    await pitstop.store({ id: "r" }, T0, null, "PT1H");
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const [d] = await pitstop.claim({ limit: 1 });
      await d.nack({ error: `boom ${i}` });
      const record = (await store.get("r"))!;
      delays.push(record.dueAt - clock.now());
      clock.set(record.dueAt);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(await pitstop.get("r")).toMatchObject({ lastError: "boom 6" });
    let [d] = await pitstop.claim({ limit: 1 });
    await d.nack();
    expect((await pitstop.get("r"))!.lastError).toBeUndefined();
    clock.advance(60_000);
    [d] = await pitstop.claim({ limit: 1 });
    await d.nack({ error: "again" });
    clock.advance(60_000);
    [d] = await pitstop.claim({ limit: 1 });
    await d.ack();
    const view = (await pitstop.get("r"))!;
    expect(view.lastError).toBeUndefined();
    expect(view).toMatchObject({ attempts: 0, at: "2026-05-01T09:00:00.000Z" });
  });
});

describe("prefetch and holds", () => {
  it("caps the unacked deliveries of a stream at ?prefetch=N", async () => {
    const { app, pitstop, call } = setup({ real: true });
    const server = await served(app, pitstop);
    for (let i = 0; i < 5; i++) await call("POST", "/messages", { message: { id: `p${i}` }, topic: "pf" });
    const sse = await openSse(`${server.url}/events?topic=pf&prefetch=2`);
    closers.push(async () => sse.close());
    const first = await sse.nextDelivery();
    await sse.nextDelivery();
    // Nothing more may come while two are unacked; a short wait is the only way to see a silence.
    await expect(sse.nextDelivery(300)).rejects.toThrow(/no SSE frame/);
    expect((await pitstop.get("p2"))!.locked).toBe(false);
    expect((await call("POST", `/messages/${first.id}/ack`, { token: first.token })).status).toBe(204);
    expect((await sse.nextDelivery()).id).toMatch(/^p[2-4]$/);
  });

  it.each(["replaced", "removed"])("frees a full listener's slot at once when its message is %s; the old token gets 409", async (change) => {
    const { pitstop, call } = setup({ real: true });
    closers.push(() => pitstop.close());
    const listener = pitstop.listen({ topic: "slot", prefetch: 1 });
    const iterator = listener[Symbol.asyncIterator]();
    await pitstop.schedule({ message: { id: "a" }, topic: "slot" });
    const held = (await iterator.next()).value!;
    await pitstop.schedule({ message: { id: "b" }, topic: "slot" });
    if (change === "replaced") await pitstop.schedule({ message: { id: "a", v: 2 }, topic: "slot", at: Date.now() + 3_600_000 });
    else await pitstop.remove("a");
    const next = await Promise.race([iterator.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("slot not freed")), 10_000))]);
    expect(next.value!.id).toBe("b");
    const expected = change === "replaced" ? { status: 409, json: { error: "lock_lost" } } : { status: 404, json: { error: "not_found" } };
    expect(await call("POST", "/messages/a/ack", { token: held.token })).toMatchObject(expected);
  });
});

describe("auth", () => {
  it.each([
    ["no header", undefined],
    ["Basic", "Basic czNjcmV0"],
    ["an empty bearer", "Bearer "],
    ["a prefix of the token", "Bearer s3cre"],
    ["the token with more", "Bearer s3cret2"],
    ["a token with a space", "Bearer s3 cret"],
  ])("answers 401 unauthorized to %s and stores nothing", async (_kind, authorization) => {
    const { app, call } = setup({ token: "s3cret" });
    const headers: Record<string, string> = { "content-type": "application/json", ...(authorization && { authorization }) };
    const response = await app.request("/messages", { method: "POST", headers, body: '{"message":{"id":"m"}}' });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "unauthorized", message: expect.stringMatching(/Bearer/) });
    expect((await call("GET", "/messages/m")).status).toBe(404);
    expect((await call("POST", "/messages", { message: { id: "m" } })).status).toBe(201);
  });
});

describe("a slow store", () => {
  it("never hands out a delivery whose lock expired during a slow claim; the message comes again with a live lock", async () => {
    const inner = memoryStore();
    let slow = true;
    const store = {
      ...inner,
      name: "slow",
      async claim(request: Parameters<typeof inner.claim>[0]) {
        const claimed = await inner.claim(request);
        if (slow && claimed.length > 0) {
          slow = false;
          await new Promise((resolve) => setTimeout(resolve, 1500));
        }
        return claimed;
      },
    };
    const { log, waitFor } = capturingLog();
    const pitstop = createPitstop({ store, lockTime: "PT1S", log });
    closers.push(() => pitstop.close());
    await pitstop.store({ id: "x" });
    const { value: d } = await pitstop.listen()[Symbol.asyncIterator]().next();
    expect(d!.lockedUntil).toBeGreaterThan(Date.now());
    expect(d).toMatchObject({ id: "x", attempt: 2 });
    await waitFor(/^warn a claim took longer than the lock time; 1 message/);
    await d!.ack();
  });
});

describe("log lines", () => {
  it("writes one line when an expired lock re-emits a message", async () => {
    const store = memoryStore();
    const { lines, log } = capturingLog();
    const pitstop = createPitstop({ store, lockTime: 200, log });
    closers.push(() => pitstop.close());
    const iterator = pitstop.listen({ prefetch: 1 })[Symbol.asyncIterator]();
    await pitstop.store({ id: "slow" });
    expect((await iterator.next()).value).toMatchObject({ id: "slow", attempt: 1 });
    expect((await iterator.next()).value).toMatchObject({ id: "slow", attempt: 2 });
    expect(lines.filter((l) => l.startsWith('warn lock on message "slow" (attempt 1) expired'))).toHaveLength(1);
  });
});
