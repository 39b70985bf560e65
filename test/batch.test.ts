import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import type { Store } from "../src/types.ts";
import { manualClock } from "./support/clock.ts";
import { flakyStore } from "./support/flaky-store.ts";
import { jsonClient, viaApp } from "./support/http.ts";

const T0 = Date.parse("2026-05-01T08:00:00Z");

function setup(options: { token?: string; store?: Store } = {}) {
  const store = options.store ?? memoryStore();
  const pitstop = createPitstop({ store, clock: manualClock(T0), log: () => {} });
  const app = createApp(pitstop, { token: options.token, log: () => {} });
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const call = jsonClient("", { headers, transport: viaApp(app) });
  const ids = async () => ((await call("GET", "/messages?limit=1000")).json.items as { id: string }[]).map((m) => m.id).sort();
  return { pitstop, app, call, store, ids };
}

describe("POST /messages/batch", () => {
  it("stores the good items and refuses the bad ones alone, answering each in order", async () => {
    const { call } = setup();
    await call("POST", "/messages", { message: { id: "old" } });
    const { status, json } = await call("POST", "/messages/batch", {
      messages: [
        { message: { id: "a", n: 1 }, at: T0 + 1000 },
        { message: "not an object" },
        { message: { id: "old", v: 2 }, topic: "jobs" },
        { message: { id: "b" }, cron: "0 9 * * *", interval: "PT1H" },
        { message: {}, unknown: 1 },
        { message: {} },
      ],
    });
    expect(status).toBe(200);
    expect(json.results).toEqual([
      { id: "a", status: 201 },
      { error: "invalid_request", message: "Invalid request: message: message must be a JSON object", index: 1, issues: [{ path: ["message"], message: "message must be a JSON object" }] },
      { id: "old", status: 200 },
      { error: "invalid_request", message: "cron and interval are mutually exclusive: give one of them", index: 3, issues: [{ path: ["cron"], message: "cron and interval are mutually exclusive: give one of them" }] },
      { error: "invalid_request", message: expect.stringContaining("unknown"), index: 4, issues: expect.any(Array) },
      { id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 201 },
    ]);
    expect((await call("GET", "/messages/a")).json).toMatchObject({ message: { id: "a", n: 1 }, at: "2026-05-01T08:00:01.000Z" });
    expect((await call("GET", "/messages/old")).json).toMatchObject({ message: { id: "old", v: 2 }, topic: "jobs" });
    expect((await call("GET", "/messages/b")).status).toBe(404);
    expect((await call("GET", `/messages/${json.results[5].id}`)).status).toBe(200);
  });

  it("treats an id given twice as two stores in order: 201 then 200, and the last one kept", async () => {
    const { call } = setup();
    const { json } = await call("POST", "/messages/batch", {
      messages: [{ message: { id: "d", v: 1 } }, { message: { id: "e" } }, { message: { id: "d", v: 2 } }, { message: { id: "d", v: 3 }, at: "bad" }],
    });
    expect(json.results).toEqual([
      { id: "d", status: 201 },
      { id: "e", status: 201 },
      { id: "d", status: 200 },
      expect.objectContaining({ error: "invalid_request", index: 3 }),
    ]);
    expect((await call("GET", "/messages/d")).json.message).toEqual({ id: "d", v: 2 });
  });

  it("takes 1,000 messages; refuses 1,001 with 413 payload_too_large, storing none", async () => {
    const { call, ids } = setup();
    const batch = (n: number, prefix: string) => ({ messages: Array.from({ length: n }, (_, i) => ({ message: { id: `${prefix}${i}` } })) });
    const big = await call("POST", "/messages/batch", batch(1001, "x"));
    expect(big).toEqual({ status: 413, json: { error: "payload_too_large", message: "A batch holds at most 1000 messages; this one has 1001. Send it in several." } });
    expect(await ids()).toEqual([]);
    const full = await call("POST", "/messages/batch", batch(1000, "m"));
    expect(full.status).toBe(200);
    expect(full.json.results.every((r: { status: number }) => r.status === 201)).toBe(true);
    expect(await ids()).toHaveLength(1000);
  });

  it("refuses a malformed envelope with 400 (or 415) and changes nothing", async () => {
    const { call, app, ids } = setup();
    const refused = async (body: unknown, code = "invalid_request", status = 400) => {
      const answer = await call("POST", "/messages/batch", body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(answer.json.error).toBe(code);
      return answer.json.message as string;
    };
    expect(await refused("{not json")).toBe("The request body is not valid JSON.");
    expect(await refused({})).toMatch(/^Invalid request: messages: /);
    expect(await refused({ messages: { message: {} } })).toBe("Invalid request: messages: messages must be an array of POST /messages bodies");
    expect(await refused({ messages: [] })).toBe("Invalid request: messages: messages must hold at least one message");
    expect(await refused({ messages: [{ message: {} }], extra: true })).toMatch(/extra/);
    expect(await refused([{ message: {} }])).toMatch(/^Invalid request/);
    const text = await app.request("/messages/batch", { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ messages: [{ message: {} }] }) });
    expect(text.status).toBe(415);
    expect(await ids()).toEqual([]);
  });

  it("requires the token like every route", async () => {
    const { app, call, ids } = setup({ token: "s3cret" });
    const body = JSON.stringify({ messages: [{ message: { id: "t" } }] });
    const anonymous = await app.request("/messages/batch", { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(anonymous.status).toBe(401);
    expect(await ids()).toEqual([]);
    expect((await call("POST", "/messages/batch", JSON.parse(body))).json).toEqual({ results: [{ id: "t", status: 201 }] });
  });

  it("answers 503 store_unavailable when the store fails", async () => {
    const store = flakyStore(memoryStore());
    const { call } = setup({ store });
    store.failing.add("putMany");
    const answer = await call("POST", "/messages/batch", { messages: [{ message: { id: "f" } }, { message: 5 }] });
    expect(answer.status).toBe(503);
    expect(answer.json).toMatchObject({ error: "store_unavailable", message: expect.stringContaining("disk on fire") });
  });
});

describe("scheduleMany", () => {
  it("falls back to one put per message on a store without putMany, with the same outcomes", async () => {
    const { putMany: _, ...store } = memoryStore();
    expect("putMany" in store).toBe(false);
    const { pitstop } = setup({ store });
    const outcomes = await pitstop.scheduleMany([{ message: { id: "p" } }, { message: { id: "q" } }, { message: { id: "p", v: 2 } }]);
    expect(outcomes.map((o) => ("scheduled" in o ? o.scheduled.replaced : o.error.code))).toEqual([false, false, true]);
    expect((await pitstop.get("p"))?.message).toEqual({ id: "p", v: 2 });
  });

  it("wakes a waiting listener, which then gets the batch's due messages", async () => {
    const pitstop = createPitstop({ log: () => {} });
    const listener = pitstop.listen({ topic: "wake" });
    const first = listener[Symbol.asyncIterator]().next();
    await pitstop.scheduleMany([{ message: { id: "w1" }, topic: "wake" }, { message: { id: "w2" }, topic: "wake" }]);
    const ceiling = new Promise((_, reject) => setTimeout(() => reject(new Error("no delivery within 5 s")), 5000));
    const delivered = (await Promise.race([first, ceiling])) as IteratorResult<{ id: string }>;
    expect(["w1", "w2"]).toContain(delivered.value.id);
    await listener.stop();
  });

  it("keeps the batch's order for an ordered topic, also for 1,500 messages stored in one millisecond", async () => {
    const store = memoryStore();
    const { pitstop } = setup({ store });
    await pitstop.setPolicy("fifo", { ordered: true });
    await pitstop.scheduleMany(Array.from({ length: 1500 }, (_, i) => ({ message: { id: `o${i}` }, topic: "fifo" })));
    const seqs = await Promise.all(Array.from({ length: 1500 }, async (_, i) => (await store.get(`o${i}`))!.seq!));
    expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1])).toBe(true);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      const [d] = await pitstop.claim({ topic: "fifo", limit: 10 });
      order.push(d.id);
      await d.ack();
    }
    expect(order).toEqual(["o0", "o1", "o2"]);
  });
});
