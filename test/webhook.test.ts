import { createHmac } from "node:crypto";
import type { ServerResponse } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { callbackChecker } from "../src/webhook/callback-url.ts";
import { createPitstop, type Pitstop, type PitstopOptions } from "../src/index.ts";
import { assemble } from "../src/runtimes/compose.ts";
import { readConfig } from "../src/runtimes/config.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { signWebhook, startWebhookLoop, tickWebhooks, verifyWebhook, type WebhookLoop } from "../src/index.ts";
import { manualClock, type ManualClock } from "./support/clock.ts";
import { closedPortUrl, startReceiver, type Receiver } from "./support/receiver.ts";

// The Standard Webhooks specification's test vector.
const allowPrivate = callbackChecker({ allowPrivate: true });
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR = { webhookId: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, body: '{"test": 2432232314}' };
const VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const vectorHeaders = (signature = VECTOR_SIGNATURE) => ({
  "webhook-id": VECTOR.webhookId,
  "webhook-timestamp": String(VECTOR.timestamp),
  "webhook-signature": signature,
});
const T0 = Date.parse("2026-01-01T00:00:00Z");

describe("signing", () => {
  it("reproduces the Standard Webhooks test vector", async () => {
    expect(await signWebhook({ secret: SECRET, ...VECTOR })).toBe(VECTOR_SIGNATURE);
  });

  it("verifies a valid signature, from Headers or a plain object, among several", async () => {
    const now = VECTOR.timestamp * 1000;
    const check = (headers: Headers | Record<string, string>, body: string | Uint8Array = VECTOR.body, at = now) =>
      verifyWebhook({ secret: SECRET, headers, body, now: at });
    expect(await check(vectorHeaders())).toBe(true);
    expect(await check(new Headers(vectorHeaders()))).toBe(true);
    expect(await check(vectorHeaders(), new TextEncoder().encode(VECTOR.body))).toBe(true);
    expect(await check(vectorHeaders(`v1,Zm9v v1a,abc ${VECTOR_SIGNATURE}`))).toBe(true);
    expect(await check({ "Webhook-Id": VECTOR.webhookId, "Webhook-Timestamp": String(VECTOR.timestamp), "Webhook-Signature": VECTOR_SIGNATURE })).toBe(true);
    expect(await check(vectorHeaders(), '{"test": 2432232315}')).toBe(false);
    expect(await check(vectorHeaders("v1,Zm9v v1,!!notbase64 v2,x"))).toBe(false);
    expect(await check(vectorHeaders(VECTOR_SIGNATURE.replace("v1,", "v1a,")))).toBe(false);
    expect(await check({ ...vectorHeaders(), "webhook-timestamp": "1614265330.0" })).toBe(false);
    expect(await check({ "webhook-id": VECTOR.webhookId, "webhook-timestamp": String(VECTOR.timestamp) })).toBe(false);
    expect(await check(vectorHeaders(), VECTOR.body, now + 300_000)).toBe(true);
    expect(await check(vectorHeaders(), VECTOR.body, now + 301_000)).toBe(false);
    expect(await check(vectorHeaders(), VECTOR.body, now - 301_000)).toBe(false);
    expect(await verifyWebhook({ secret: "whsec_" + btoa("another secret, 24 bytes+"), headers: vectorHeaders(), body: VECTOR.body, now })).toBe(false);
  });

  it("refuses a malformed secret", async () => {
    await expect(signWebhook({ secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ...VECTOR })).rejects.toThrow(/must start with "whsec_"/);
    await expect(signWebhook({ secret: "whsec_***", ...VECTOR })).rejects.toThrow(/followed by base64/);
    await expect(signWebhook({ secret: "whsec_c2hvcnQ=", ...VECTOR })).rejects.toThrow(/at least 24 bytes/);
  });
});

describe("webhook delivery", () => {
  let receiver: Receiver;
  let clock: ManualClock;
  let pitstop: Pitstop;
  const hanging: ServerResponse[] = [];
  const engine = (options: PitstopOptions = {}) =>
    createPitstop({ clock, checkCallback: allowPrivate, ...options });
  const tick = (options: Parameters<typeof tickWebhooks>[1] = {}) => tickWebhooks(pitstop, { signingSecret: SECRET, checkCallback: allowPrivate, ...options });
  const answer = (status: number, headers: Record<string, string> = {}) => {
    receiver.handler = (_r, res) => res.writeHead(status, headers).end();
  };

  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());
  beforeEach(() => {
    receiver.reset();
    clock = manualClock(T0);
    pitstop = engine();
  });
  afterEach(async () => {
    for (const res of hanging.splice(0)) res.destroy();
    await pitstop.close();
  });

  it("POSTs the body with Standard Webhooks headers, and a 2xx acks", async () => {
    await pitstop.schedule({ message: { id: "order/1", total: 5 }, callback: receiver.url() });
    expect(await tick()).toEqual({ delivered: 1, failed: 0, removed: 0 });
    const [request] = receiver.received;
    expect(request).toMatchObject({ method: "POST", path: "/hook" });
    expect(JSON.parse(request.body)).toEqual({ id: "order/1", message: { id: "order/1", total: 5 }, attempt: 1, at: "2026-01-01T00:00:00.000Z", deadline: "2026-01-01T00:15:00.000Z" });
    expect(request.headers).toMatchObject({ "content-type": "application/json", "webhook-id": `order/1:${T0}`, "webhook-timestamp": String(T0 / 1000) });
    expect(await verifyWebhook({ secret: SECRET, headers: request.headers, body: request.body, now: T0 })).toBe(true);
    const key = Buffer.from(SECRET.slice("whsec_".length), "base64");
    const expected = createHmac("sha256", key).update(`order/1:${T0}.${T0 / 1000}.${request.body}`).digest("base64");
    expect(request.headers["webhook-signature"]).toBe(`v1,${expected}`);
    expect(await pitstop.get("order/1")).toBeUndefined();
  });

  it("claims as the consumer \"webhooks\": lockedBy while the call is in flight", async () => {
    await pitstop.schedule({ message: { id: "busy" }, callback: receiver.url() });
    let seen: unknown;
    receiver.handler = (_request, res) => {
      void pitstop.get("busy").then((view) => {
        seen = view;
        res.writeHead(204).end();
      });
    };
    expect(await tick()).toMatchObject({ delivered: 1 });
    expect(seen).toMatchObject({ locked: true, lockedBy: "webhooks", lockedUntil: "2026-01-01T00:15:00.000Z" });
  });

  it("percent-encodes ids that are not header-safe, and sends no signature without a secret", async () => {
    await pitstop.schedule({ message: { id: "é: 1%" }, callback: receiver.url() });
    expect(await tick({ signingSecret: undefined })).toMatchObject({ delivered: 1 });
    expect(receiver.received[0].headers["webhook-id"]).toBe(`%C3%A9%3A%201%25:${T0}`);
    expect(receiver.received[0].headers["webhook-signature"]).toBeUndefined();
  });

  it("moves an acked recurring message to its next occurrence", async () => {
    await pitstop.schedule({ message: { id: "r" }, interval: "PT1M", callback: receiver.url() });
    await tick();
    expect(await pitstop.get("r")).toMatchObject({ at: "2026-01-01T00:01:00.000Z", attempts: 0, locked: false });
  });

  it("nacks a 500 with lastError and the backoff", async () => {
    answer(500);
    await pitstop.schedule({ message: { id: "m" }, callback: receiver.url() });
    expect(await tick()).toEqual({ delivered: 0, failed: 1, removed: 0 });
    expect(await pitstop.get("m")).toMatchObject({ attempts: 1, lastError: "HTTP 500", locked: false });
    clock.advance(999);
    expect(await tick()).toEqual({ delivered: 0, failed: 0, removed: 0 });
    clock.advance(1);
    expect(await tick()).toEqual({ delivered: 0, failed: 1, removed: 0 });
    expect(await pitstop.get("m")).toMatchObject({ attempts: 2, lastError: "HTTP 500" });
    expect(JSON.parse(receiver.received[1].body).attempt).toBe(2);
    expect(receiver.received[1].headers["webhook-id"]).toBe(receiver.received[0].headers["webhook-id"]);
  });

  it.each([
    ["seconds", "120", 120_000],
    ["an HTTP date", new Date(T0 + 300_000).toUTCString(), 300_000],
  ])("honours Retry-After in %s", async (_kind, retryAfter, delay) => {
    answer(503, { "retry-after": retryAfter });
    await pitstop.schedule({ message: { id: "m" }, callback: receiver.url() });
    expect(await tick()).toMatchObject({ failed: 1 });
    expect(await pitstop.get("m")).toMatchObject({ lastError: "HTTP 503", locked: false });
    answer(200);
    clock.advance(delay - 1);
    expect(await tick()).toMatchObject({ delivered: 0 });
    clock.advance(1);
    expect(await tick()).toMatchObject({ delivered: 1 });
  });

  it.each([
    ["a date in the past", new Date(T0 - 3_600_000).toUTCString()],
    ["zero seconds", "0"],
  ])("retries at once for a Retry-After of %s", async (_kind, retryAfter) => {
    answer(503, { "retry-after": retryAfter });
    await pitstop.schedule({ message: { id: "m" }, callback: receiver.url() });
    expect(await tick()).toMatchObject({ failed: 1 });
    expect(await pitstop.get("m")).toMatchObject({ lastError: "HTTP 503", locked: false });
    answer(200);
    expect(await tick()).toMatchObject({ delivered: 1 });
    expect(await pitstop.get("m")).toBeUndefined();
  });

  it("nacks a timeout", async () => {
    receiver.handler = (_r, res) => hanging.push(res);
    await pitstop.schedule({ message: { id: "m" }, callback: receiver.url() });
    expect(await tick({ timeoutMs: 200 })).toMatchObject({ failed: 1 });
    expect(await pitstop.get("m")).toMatchObject({ attempts: 1, lastError: "timeout after 200 ms", locked: false });
  });

  it("nacks a network error", async () => {
    await pitstop.schedule({ message: { id: "m" }, callback: await closedPortUrl() });
    expect(await tick()).toMatchObject({ failed: 1 });
    expect((await pitstop.get("m"))!.lastError).toMatch(/^fetch failed: .*ECONNREFUSED/);
  });

  it("does not follow redirects", async () => {
    answer(307, { location: receiver.url("/elsewhere") });
    await pitstop.schedule({ message: { id: "m" }, callback: receiver.url() });
    expect(await tick()).toMatchObject({ failed: 1 });
    expect((await pitstop.get("m"))!.lastError).toBe("HTTP 307");
    expect(receiver.received.map((r) => r.path)).toEqual(["/hook"]);
  });

  it("removes a message, recurring too, on 410 Gone", async () => {
    answer(410);
    await pitstop.schedule({ message: { id: "r" }, interval: "PT1M", callback: receiver.url() });
    expect(await tick()).toEqual({ delivered: 0, failed: 0, removed: 1 });
    expect(await pitstop.get("r")).toBeUndefined();
  });

  it("checks the callback again at delivery, exempting the configured default callback", async () => {
    const store = memoryStore();
    await engine({ store }).schedule({ message: { id: "private" }, callback: receiver.url("/private") });
    const assembly = assemble(readConfig({ PITSTOP_CALLBACK_URL: receiver.url("/default") }), store);
    pitstop = assembly.pitstop;
    await expect(pitstop.schedule({ message: { id: "x" }, callback: receiver.url("/other") })).rejects.toMatchObject({ code: "invalid_request" });
    expect(await pitstop.schedule({ message: { id: "d" } })).toMatchObject({ callback: receiver.url("/default") });
    expect(await tickWebhooks(pitstop, assembly.webhook)).toEqual({ delivered: 1, failed: 1, removed: 0 });
    expect(receiver.received.map((r) => r.path)).toEqual(["/default"]);
    expect((await pitstop.get("private"))!.lastError).toMatch(/^callback refused: callback host 127\.0\.0\.1 is a loopback/);
  });

  it("stops after maxMessages and goes on with the next call", async () => {
    for (let i = 0; i < 5; i++) await pitstop.schedule({ message: { id: `m${i}` }, callback: receiver.url() });
    expect(await tick({ maxMessages: 2 })).toMatchObject({ delivered: 2 });
    expect(await tick({ maxMessages: 2 })).toMatchObject({ delivered: 2 });
    expect(await tick({ maxMessages: 2 })).toMatchObject({ delivered: 1 });
    expect(await tick({ maxMessages: 2 })).toMatchObject({ delivered: 0 });
  });

  it.each(["tickWebhooks", "startWebhookLoop"])("%s keeps at most `concurrency` requests in flight", async (mode) => {
    const total = 10;
    const bound = 3;
    const held: ServerResponse[] = [];
    let answered = 0;
    let most = 0;
    // Answer a group only once `bound` requests wait (fewer at the end), so the bound is reached.
    receiver.handler = (_r, res) => {
      held.push(res);
      most = Math.max(most, held.length);
      if (held.length !== Math.min(bound, total - answered)) return;
      setTimeout(() => {
        answered += held.length;
        for (const r of held.splice(0)) r.writeHead(200).end();
      }, 20);
    };
    if (mode === "startWebhookLoop") pitstop = engine({ clock: undefined });
    for (let i = 0; i < total; i++) await pitstop.schedule({ message: { id: `m${i}` }, callback: receiver.url() });
    if (mode === "tickWebhooks") {
      expect(await tick({ concurrency: bound })).toMatchObject({ delivered: total });
    } else {
      const loop = startWebhookLoop(pitstop, { concurrency: bound, checkCallback: allowPrivate });
      await receiver.waitFor(total);
      await loop.stop();
    }
    expect(most).toBe(bound);
    for (let i = 0; i < total; i++) expect(await pitstop.get(`m${i}`)).toBeUndefined();
  });
});

describe("the webhook loop", () => {
  let receiver: Receiver;
  let pitstop: Pitstop;
  let loop: WebhookLoop;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());
  beforeEach(() => {
    receiver.reset();
    pitstop = createPitstop({ checkCallback: callbackChecker({ allowPrivate: true }) });
    loop = startWebhookLoop(pitstop, { signingSecret: SECRET, checkCallback: allowPrivate });
  });
  afterEach(async () => {
    await loop.stop();
    await pitstop.close();
  });

  it("delivers a message promptly when it falls due, and acks it", async () => {
    const at = Date.now() + 100;
    await pitstop.schedule({ message: { id: "soon" }, at, callback: receiver.url() });
    await receiver.waitFor(1);
    const [request] = receiver.received;
    expect(request.time).toBeGreaterThanOrEqual(at);
    expect(request.time - at).toBeLessThan(5000);
    expect(await verifyWebhook({ secret: SECRET, headers: request.headers, body: request.body })).toBe(true);
    await vi.waitFor(async () => expect(await pitstop.get("soon")).toBeUndefined(), { timeout: 10_000 });
  });

  it("lets a request in flight finish on stop, so it is acked and not sent again", async () => {
    let respond = () => {};
    receiver.handler = (_r, res) => (respond = () => res.writeHead(200).end());
    await pitstop.schedule({ message: { id: "slow" }, callback: receiver.url() });
    await receiver.waitFor(1);
    const stopped = loop.stop();
    respond();
    await stopped;
    expect(await pitstop.get("slow")).toBeUndefined();
  });
});
