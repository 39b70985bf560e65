import { expect } from "vitest";
import { jsonClient } from "../support/http.ts";
import { openSse, type SseClient } from "../support/sse.ts";
import { runFailureScenario } from "./scenario-failures.ts";
import { runObserveScenario } from "./scenario-observe.ts";

/** What the server under test was started with. */
export interface ScenarioOptions {
  /** The server's PITSTOP_TOKEN, if any. */
  token?: string;
  /** The server's lock time in ms (keep it a few seconds). */
  lockTimeMs: number;
  /** The store `/health` should report. @default "memory" */
  store?: string;
  /** The server builds an engine per request (Workers with a database store): its metric counters cover one request. */
  enginePerRequest?: boolean;
}

/**
 * The user's journey over HTTP, the same on every runtime: store, receive on SSE, ack,
 * metrics and the dashboard, recurring ×3, cron with seconds ×3 and a zoned preview, replace,
 * remove, lock expiry, extend, nack, release on disconnect, bad input, auth, the OpenAPI document
 * and a stream ticket.
 */
export async function runScenario(base: string, options: ScenarioOptions): Promise<void> {
  const auth: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const topic = `scenario-${crypto.randomUUID().slice(0, 8)}`;
  const call = jsonClient(base, { headers: auth });
  const schedule = (body: Record<string, unknown>) => call("POST", "/messages", { topic, ...body });
  const ack = (id: string, token: string) => call("POST", `/messages/${encodeURIComponent(id)}/ack`, { token });

  expect(await call("GET", "/health")).toEqual({ status: 200, json: { ok: true, store: options.store ?? "memory" } });
  if (options.token) {
    const denied = await jsonClient(base)("GET", "/messages/x");
    expect(denied.status).toBe(401);
    expect(denied.json).toMatchObject({ error: "unauthorized" });
    const wrong = await jsonClient(base, { headers: { authorization: "Bearer wrong" } })("GET", "/messages/x");
    expect(wrong.status).toBe(401);
  }

  // The OpenAPI document is public; a stream ticket (HMAC with Web Crypto) opens its topic's stream.
  const document = await jsonClient(base)("GET", "/openapi.json");
  expect(document.json).toMatchObject({ openapi: "3.1.0", paths: { "/messages/{id}/ack": { post: expect.any(Object) } } });
  if (options.token) {
    const { json } = await call("POST", "/tickets", { topic: `${topic}-ticket` });
    const viaTicket = await openSse(`${base}/events?topic=${topic}-ticket&ticket=${encodeURIComponent(json.ticket)}`);
    expect((await viaTicket.nextFrame()).comment).toMatch(/^connected as /);
    viaTicket.close();
  }

  const consumer = `reader-${topic}`;
  const sse: SseClient = await openSse(`${base}/events?topic=${topic}&consumer=${consumer}`, auth);
  try {
    expect(sse.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect((await sse.nextFrame()).comment).toBe(`connected as ${consumer}`);
    /** Receives `count` deliveries, acks each, and returns their scheduled times. */
    const receiveAndAck = async (count: number): Promise<string[]> => {
      const ats: string[] = [];
      for (let i = 0; i < count; i++) {
        const d = await sse.nextDelivery();
        ats.push(d.at);
        expect((await ack(d.id, d.token)).status).toBe(204);
      }
      return ats;
    };

    // One-shot: delivered at its time, not before; ack removes it.
    const at = Date.now() + 300;
    const created = await schedule({ message: { hello: "world" }, at });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ id: expect.any(String), at: new Date(at).toISOString(), topic });
    const first = await sse.nextDelivery();
    expect(Date.now()).toBeGreaterThanOrEqual(at - 5);
    expect(first).toEqual({ id: created.json.id, message: { id: created.json.id, hello: "world" }, attempt: 1, token: expect.any(String), at: new Date(at).toISOString(), deadline: expect.any(String) });
    expect(Date.parse(first.deadline)).toBeGreaterThan(at);
    expect(Date.parse(first.deadline)).toBeLessThanOrEqual(Date.now() + options.lockTimeMs);
    expect((await ack(first.id, first.token)).status).toBe(204);
    expect((await call("GET", `/messages/${first.id}`)).status).toBe(404);
    await runObserveScenario(base, topic, { token: options.token, enginePerRequest: options.enginePerRequest });

    // Recurring: three occurrences, end included, then gone.
    const start = Date.now() + 200;
    const recurring = await schedule({ message: { id: "rec" }, at: new Date(start).toISOString(), interval: 500, end: start + 1000 });
    expect(recurring.json).toMatchObject({ id: "rec", interval: "PT0.5S", end: new Date(start + 1000).toISOString() });
    expect(await receiveAndAck(3)).toEqual([0, 500, 1000].map((k) => new Date(start + k).toISOString()));
    expect((await call("GET", "/messages/rec")).status).toBe(404);

    // Cron with seconds: every second, three occurrences (end included), each delivered with its own
    // time even when the machine is slow ("all"), then gone.
    const second = Math.ceil((Date.now() + 500) / 1000) * 1000;
    const cron = await schedule({ message: { id: "cron" }, cron: "* * * * * *", at: second, end: second + 2000, missed: "all" });
    expect(cron.json).toMatchObject({ id: "cron", at: new Date(second).toISOString(), cron: "* * * * * *", tz: "UTC", missed: "all" });
    expect((await call("GET", "/messages/cron")).json.upcoming).toEqual([0, 1000, 2000].map((k) => new Date(second + k).toISOString()));
    expect(await receiveAndAck(3)).toEqual([0, 1000, 2000].map((k) => new Date(second + k).toISOString()));
    expect((await call("GET", "/messages/cron")).status).toBe(404);
    expect((await call("POST", "/schedules/preview", { cron: "0 9 * * MON-FRI", tz: "Europe/Berlin", at: "2026-03-27T00:00:00Z", count: 2 })).json).toEqual({
      occurrences: ["2026-03-27T08:00:00.000Z", "2026-03-30T07:00:00.000Z"],
    });

    // Replace: the same id stored again wins, body and time.
    expect((await schedule({ message: { id: "abc", foo: "bar" }, at: Date.now() + 60_000 })).status).toBe(201);
    const replaced = await schedule({ message: { id: "abc", foo: "update" }, at: Date.now() + 100 });
    expect(replaced.status).toBe(200);
    const updated = await sse.nextDelivery();
    expect(updated.message).toEqual({ id: "abc", foo: "update" });
    expect((await ack("abc", updated.token)).status).toBe(204);

    // Remove.
    await schedule({ message: { id: "doomed" }, at: Date.now() + 60_000 });
    expect((await call("DELETE", "/messages/doomed")).status).toBe(204);
    expect(await call("DELETE", "/messages/doomed")).toMatchObject({ status: 404, json: { error: "not_found" } });

    // Lock expiry: unacked, it comes back after the lock time; the old token is then lost.
    await schedule({ message: { id: "slow" } });
    const unacked = await sse.nextDelivery();
    const again = await sse.nextDelivery(options.lockTimeMs + 10_000);
    expect(again).toMatchObject({ id: "slow", attempt: 2 });
    expect(await ack("slow", unacked.token)).toMatchObject({ status: 409, json: { error: "lock_lost" } });
    expect((await ack("slow", again.token)).status).toBe(204);

    // Extend: the lock outlives its original lock time, with the same token, until acked.
    await schedule({ message: { id: "lease" } });
    const leased = await sse.nextDelivery();
    const extended = await call("POST", "/messages/lease/extend", { token: leased.token, by: options.lockTimeMs * 3 });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.json.lockedUntil)).toBeGreaterThan(Date.parse(leased.deadline) + options.lockTimeMs);
    await expect(sse.nextDelivery(options.lockTimeMs + 500)).rejects.toThrow(/no SSE frame within/);
    expect((await call("GET", "/messages/lease")).json).toMatchObject({ locked: true, attempts: 1, lockedBy: consumer, lockedUntil: extended.json.lockedUntil });
    expect(await call("POST", "/messages/lease/extend", { token: "stale" })).toMatchObject({ status: 409, json: { error: "lock_lost" } });
    expect((await ack("lease", leased.token)).status).toBe(204);

    // Nack: retried after retryIn with lastError recorded.
    await schedule({ message: { id: "flaky" } });
    const failing = await sse.nextDelivery();
    expect((await call("POST", "/messages/flaky/nack", { token: failing.token, error: "boom", retryIn: 200 })).status).toBe(204);
    expect((await call("GET", "/messages/flaky")).json).toMatchObject({ lastError: "boom", attempts: 1, locked: false });
    const retried = await sse.nextDelivery();
    expect(retried).toMatchObject({ id: "flaky", attempt: 2, at: failing.at });
    expect((await ack("flaky", retried.token)).status).toBe(204);
  } finally {
    sse.close();
  }

  // A client that goes away releases what it held at once, long before the lock time.
  const leaving = await openSse(`${base}/events?topic=${topic}-2`, auth);
  await call("POST", "/messages", { message: { id: "held" }, topic: `${topic}-2` });
  expect((await leaving.nextDelivery()).id).toBe("held");
  leaving.close();
  const staying = await openSse(`${base}/events?topic=${topic}-2`, auth);
  const handedOver = await staying.nextDelivery(Math.max(1, options.lockTimeMs - 500));
  expect(handedOver).toMatchObject({ id: "held", attempt: 2 });
  expect((await ack("held", handedOver.token)).status).toBe(204);
  staying.close();

  // Bad input: a clear error, and nothing stored changes.
  await schedule({ message: { id: "keep", v: 1 }, at: Date.now() + 60_000 });
  // One reading of the clock: two could straddle a millisecond and make `end` equal `at` (valid).
  const now = Date.now();
  const bad = [
    await call("POST", "/messages", "{not json"),
    await call("POST", "/messages", { message: { id: "keep", v: 2 }, surprise: true }),
    await call("POST", "/messages", { message: { id: "keep", v: 2 }, at: "tomorrow" }),
    await call("POST", "/messages", { message: { id: "keep", v: 2 }, end: Date.now() }),
    await call("POST", "/messages", { message: { id: "keep", v: 2 }, interval: "PT1H", at: now, end: now - 1 }),
    await call("POST", "/messages", { message: { id: "keep", v: 2 }, cron: "0 9 * * *", tz: "Europe/Atlantis" }),
    await call("POST", "/messages", { message: { id: "keep", v: 2 }, cron: "61 * * * *" }),
    await call("POST", "/messages", { message: { id: "bad\nid" } }),
    await call("POST", "/messages/nope/ack", { tokn: "x" }),
  ];
  for (const response of bad) {
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ error: "invalid_request", message: expect.any(String) });
  }
  expect(await ack("nope", "x")).toMatchObject({ status: 404, json: { error: "not_found" } });
  const huge = await call("POST", "/messages", { message: { id: "keep", pad: "x".repeat(1_100_000) } });
  expect(huge).toMatchObject({ status: 413, json: { error: "payload_too_large" } });
  expect((await call("GET", "/messages/keep")).json).toMatchObject({ message: { id: "keep", v: 1 }, attempts: 0 });
  expect((await call("DELETE", "/messages/keep")).status).toBe(204);

  await runFailureScenario(base, auth);
}
