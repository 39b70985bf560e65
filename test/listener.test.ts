import { afterEach, describe, expect, it } from "vitest";
import type { Delivery, Listener } from "../src/index.ts";
import { createPitstop, type Pitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";

/** Next delivery of a listener, or an error after `timeoutMs` (generous: CI may be loaded). */
async function next(listener: Listener, timeoutMs = 10_000): Promise<Delivery> {
  const iterator = listener[Symbol.asyncIterator]();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no delivery within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const result = await Promise.race([iterator.next(), timeout]);
    if (result.done) throw new Error("listener ended");
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves true if the listener yields nothing within `ms`. */
async function staysQuiet(listener: Listener, ms: number): Promise<Delivery | undefined> {
  return next(listener, ms).catch(() => undefined);
}

describe("listen() with the real clock", () => {
  let pitstop: Pitstop;
  afterEach(async () => pitstop?.close());

  it("delivers at the due time, not before, without polling", async () => {
    pitstop = createPitstop({ loopTime: "PT1M" });
    const listener = pitstop.listen();
    const at = Date.now() + 150;
    await pitstop.store({ id: "soon" }, at);
    const d = await next(listener);
    expect(Date.now()).toBeGreaterThanOrEqual(at);
    expect(d).toMatchObject({ id: "soon", at, attempt: 1 });
    await d.ack();
  });

  it("wakes a sleeping listener at once when an earlier message is stored", async () => {
    pitstop = createPitstop({ loopTime: "PT1M" });
    const listener = pitstop.listen();
    await pitstop.store({ id: "later" }, Date.now() + 50_000);
    const pending = next(listener);
    await new Promise((r) => setTimeout(r, 50));
    await pitstop.store({ id: "now" });
    expect((await pending).id).toBe("now");
  });

  it("gives each due message to exactly one of several competing listeners", async () => {
    pitstop = createPitstop({ claimBatch: 7 });
    for (let i = 0; i < 200; i++) await pitstop.store({ id: `m${i}` });
    const seen: string[] = [];
    const consume = async (listener: Listener) => {
      for (;;) {
        const d = await staysQuiet(listener, 300);
        if (!d) return;
        seen.push(d.id);
        await d.ack();
      }
    };
    await Promise.all([consume(pitstop.listen()), consume(pitstop.listen()), consume(pitstop.listen())]);
    expect(seen.length).toBe(200);
    expect(new Set(seen).size).toBe(200);
  });

  it("holds at most `prefetch` unacked deliveries; an ack makes room", async () => {
    pitstop = createPitstop();
    for (let i = 0; i < 5; i++) await pitstop.store({ id: `p${i}` });
    const listener = pitstop.listen({ prefetch: 2 });
    const a = await next(listener);
    await next(listener);
    const pending = listener[Symbol.asyncIterator]().next();
    const raced = await Promise.race([pending, new Promise((r) => setTimeout(() => r("quiet"), 200))]);
    expect(raced).toBe("quiet");
    const other = pitstop.listen({ prefetch: 1 });
    const taken = await next(other);
    expect(taken.id).toMatch(/^p[2-4]$/);
    await a.ack();
    const third = (await pending).value as Delivery;
    expect(third.id).toMatch(/^p[2-4]$/);
    expect(third.id).not.toBe(taken.id);
  });

  it("re-emits an unacked message when its lock expires", async () => {
    pitstop = createPitstop({ lockTime: 300 });
    const listener = pitstop.listen();
    await pitstop.store({ id: "dropped" });
    const first = await next(listener);
    const started = Date.now();
    const second = await next(listener);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(second).toMatchObject({ id: "dropped", attempt: 2 });
    await expect(first.ack()).rejects.toMatchObject({ code: "lock_lost" });
    await second.ack();
  });

  it("stop() releases what the listener held: another listener gets it at once", async () => {
    pitstop = createPitstop({ lockTime: "PT10M" });
    const leaving = pitstop.listen();
    await pitstop.store({ id: "handover" });
    const first = await next(leaving);
    await leaving.stop();
    const second = await next(pitstop.listen(), 5000);
    expect(second).toMatchObject({ id: "handover", attempt: 2 });
    await expect(first.ack()).rejects.toMatchObject({ code: "lock_lost" });
  });

  it("breaking out of for-await stops the listener and releases the rest", async () => {
    pitstop = createPitstop({ lockTime: "PT10M" });
    for (let i = 0; i < 3; i++) await pitstop.store({ id: `b${i}` });
    for await (const d of pitstop.listen()) {
      await d.ack();
      break;
    }
    const rest = pitstop.listen();
    const ids = [(await next(rest)).id, (await next(rest)).id].sort();
    expect(ids).toEqual(["b1", "b2"]);
  });

  it("recurring messages keep coming, each occurrence at its time", async () => {
    pitstop = createPitstop();
    const listener = pitstop.listen({ topic: "beat" });
    const start = Date.now() + 100;
    await pitstop.schedule({ message: { id: "beat" }, at: start, interval: 200, topic: "beat" });
    const ats: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await next(listener);
      expect(Date.now()).toBeGreaterThanOrEqual(d.at);
      ats.push(d.at);
      await d.ack();
    }
    expect(ats[0]).toBe(start);
    for (let i = 1; i < 3; i++) expect((ats[i] - start) % 200).toBe(0);
    expect(ats[2]).toBeGreaterThan(ats[1]);
  });

  it("sees messages stored by another process within loopTime", async () => {
    const shared = memoryStore();
    pitstop = createPitstop({ store: shared, loopTime: 300 });
    const other = createPitstop({ store: shared });
    const listener = pitstop.listen();
    const pending = next(listener);
    await new Promise((r) => setTimeout(r, 50));
    const storedAt = Date.now();
    await other.store({ id: "from-elsewhere" });
    expect((await pending).id).toBe("from-elsewhere");
    expect(Date.now() - storedAt).toBeLessThan(10_000);
  });

  it("does not make sleeping listeners query the store for a message due after they wake anyway", async () => {
    const store = memoryStore();
    let lookups = 0;
    const counted = { ...store, nextDueAt: (lane: string) => (lookups++, store.nextDueAt(lane)) };
    pitstop = createPitstop({ store: counted, loopTime: "PT1M" });
    await pitstop.store({ id: "soonest" }, Date.now() + 30_000);
    const listeners = Array.from({ length: 20 }, () => pitstop.listen());
    const pending = listeners.map((l) => next(l, 20_000).catch(() => undefined));
    while (lookups < 20) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    const settled = lookups;
    await pitstop.store({ id: "later" }, Date.now() + 50_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(lookups).toBe(settled);
    await pitstop.store({ id: "now" });
    const first = await Promise.race(pending);
    expect(first?.id).toBe("now");
  });
});
