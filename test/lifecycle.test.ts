import { describe, expect, it } from "vitest";
import { createPitstop, type LifecycleDetail, type Pitstop, type PitstopEventName } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { manualClock } from "./support/clock.ts";

const T0 = Date.parse("2026-06-01T00:00:00Z");

/** Every lifecycle event the engine dispatches, in order, as `[type, detail]`. */
function recordEvents(pitstop: Pitstop): [PitstopEventName, LifecycleDetail][] {
  const seen: [PitstopEventName, LifecycleDetail][] = [];
  for (const type of ["delivered", "acked", "nacked", "expired", "dead", "failed-occurrence"] as const) {
    pitstop.addEventListener(type, (event) => seen.push([type, event.detail]));
  }
  return seen;
}

function setup() {
  const clock = manualClock(T0);
  const store = memoryStore();
  const logged: string[] = [];
  const pitstop = createPitstop({ store, clock, lockTime: "PT1M", log: (level, line) => logged.push(`${level} ${line}`) });
  return { clock, store, pitstop, logged, events: recordEvents(pitstop) };
}

describe("lifecycle events", () => {
  it("the engine is an EventTarget dispatching delivered, nacked and acked with {id, topic, attempt, at}", async () => {
    const { clock, pitstop, events } = setup();
    expect(pitstop).toBeInstanceOf(EventTarget);
    await pitstop.schedule({ message: { id: "j" }, topic: "jobs", at: T0 });
    const [first] = await pitstop.claim({ topic: "jobs", limit: 5 });
    await first.nack({ retryIn: "PT10S" });
    clock.advance(10_000);
    const [second] = await pitstop.claim({ topic: "jobs", limit: 5 });
    await expect(pitstop.ack("j", "stale")).rejects.toMatchObject({ code: "lock_lost" });
    await pitstop.ack("j", second.token);
    expect(events).toEqual([
      ["delivered", { id: "j", topic: "jobs", attempt: 1, at: T0 }],
      ["nacked", { id: "j", topic: "jobs", attempt: 1, at: T0 }],
      ["delivered", { id: "j", topic: "jobs", attempt: 2, at: T0 }],
      ["acked", { id: "j", topic: "jobs", attempt: 2, at: T0 }],
    ]);
  });

  it("counts acks by id, in a batch, and of a Delivery; removes dispatch nothing", async () => {
    const { pitstop, events } = setup();
    for (const id of ["a", "b", "c"]) await pitstop.store({ id }, T0);
    const [a, b, c] = await pitstop.claim({ limit: 3 });
    await pitstop.ackMany([{ id: a.id, token: a.token }, { id: "ghost", token: "t" }]);
    await b.ack();
    await c.remove();
    expect(events.map(([type, detail]) => `${type} ${detail.id}`)).toEqual(["delivered a", "delivered b", "delivered c", "acked a", "acked b"]);
  });

  it("a listener dispatches delivered as it hands a delivery out, and expired when a lock runs out unacked", async () => {
    const { clock, pitstop, events } = setup();
    const listener = pitstop.listen();
    const deliveries = listener[Symbol.asyncIterator]();
    await pitstop.store({ id: "dropped" }, T0);
    const first = (await deliveries.next()).value!;
    expect(events).toEqual([["delivered", { id: "dropped", topic: "default", attempt: 1, at: T0 }]]);
    const pending = deliveries.next();
    await clock.untilTimer();
    clock.advance(60_000);
    const second = (await pending).value!;
    expect(second).toMatchObject({ id: "dropped", attempt: 2 });
    expect(events.slice(1)).toEqual([
      ["expired", { id: "dropped", topic: "default", attempt: 1, at: T0 }],
      ["delivered", { id: "dropped", topic: "default", attempt: 2, at: T0 }],
    ]);
    await expect(first.ack()).rejects.toMatchObject({ code: "lock_lost" });
    await listener.stop();
  });
});

describe("extend", () => {
  it("keeps a listener's delivery past its original lock time; the hold expires at the extended one", async () => {
    const { clock, store, pitstop, events, logged } = setup();
    const listener = pitstop.listen({ prefetch: 1 });
    const deliveries = listener[Symbol.asyncIterator]();
    await pitstop.store({ id: "long" }, T0);
    const d = (await deliveries.next()).value!;
    expect(d.lockedUntil).toBe(T0 + 60_000);
    expect(await d.extend("PT5M")).toBe(T0 + 300_000);
    expect(d.lockedUntil).toBe(T0 + 300_000);
    expect((await store.get("long"))!.lockToken).toBe(d.token);

    const pending = deliveries.next();
    await clock.untilTimer();
    clock.set(T0 + 61_000);
    // The listener wakes, finds its extended hold still valid, and sleeps again.
    await clock.untilTimer();
    expect(events.map(([type]) => type)).toEqual(["delivered"]);
    expect(logged).toEqual([]);
    expect(await pitstop.get("long")).toMatchObject({ locked: true, lockedUntil: new Date(T0 + 300_000).toISOString() });

    clock.set(T0 + 300_000);
    expect((await pending).value).toMatchObject({ id: "long", attempt: 2 });
    expect(events.map(([type]) => type)).toEqual(["delivered", "expired", "delivered"]);
    await listener.stop();
  });

  it("an extended delivery acks after its original lock time, by id or through the Delivery", async () => {
    const { clock, pitstop } = setup();
    await pitstop.store({ id: "x" }, T0);
    await pitstop.store({ id: "y" }, T0);
    const [x, y] = await pitstop.claim({ limit: 2 });
    expect(await pitstop.extend("x", x.token, 120_000)).toBe(T0 + 120_000);
    await y.extend();
    expect(y.lockedUntil).toBe(T0 + 60_000);
    clock.advance(90_000);
    expect(await pitstop.claim({ limit: 2 })).toMatchObject([{ id: "y", attempt: 2 }]);
    await pitstop.ack("x", x.token);
    expect(await pitstop.get("x")).toBeUndefined();
  });

  it("checks `by` before touching the store, and reports a lost lock or a missing message", async () => {
    const { clock, pitstop } = setup();
    await pitstop.store({ id: "z" }, T0);
    const [z] = await pitstop.claim({ limit: 1 });
    for (const by of ["soon", 0, -5, "P1M", 1.5]) {
      await expect(pitstop.extend("nowhere", z.token, by)).rejects.toMatchObject({ code: "invalid_request", issues: [{ path: ["by"] }] });
    }
    await expect(pitstop.extend("nowhere", z.token)).rejects.toMatchObject({ code: "not_found" });
    await expect(pitstop.extend("z", "stale")).rejects.toMatchObject({ code: "lock_lost" });
    clock.advance(60_000);
    await expect(z.extend()).rejects.toMatchObject({ code: "lock_lost" });
    expect(z.lockedUntil).toBe(T0 + 60_000);
  });
});

describe("consumer names", () => {
  it("records a listener's name as lockedBy; the default is generated", async () => {
    const { store, pitstop } = setup();
    await pitstop.store({ id: "n1" }, T0);
    await pitstop.schedule({ message: { id: "n2" }, topic: "other", at: T0 });
    const named = pitstop.listen({ consumer: "billing-1" });
    const anonymous = pitstop.listen({ topic: "other" });
    expect(named.consumer).toBe("billing-1");
    expect(anonymous.consumer).toMatch(/^listener-[0-9a-f]{8}$/);
    await named[Symbol.asyncIterator]().next();
    await anonymous[Symbol.asyncIterator]().next();
    expect(await pitstop.get("n1")).toMatchObject({ locked: true, lockedBy: "billing-1", lockedUntil: new Date(T0 + 60_000).toISOString() });
    expect((await store.get("n2"))!.lockedBy).toBe(anonymous.consumer);
    await named.stop();
    const released = await pitstop.get("n1");
    expect(released).toMatchObject({ locked: false });
    expect(released).not.toHaveProperty("lockedBy");
    expect(released).not.toHaveProperty("lockedUntil");
    await anonymous.stop();
  });

  it("refuses a consumer name that breaks the id rules", () => {
    const { pitstop } = setup();
    expect(() => pitstop.listen({ consumer: "" })).toThrow(expect.objectContaining({ code: "invalid_request", issues: [expect.objectContaining({ path: ["consumer"] })] }));
    return expect(pitstop.claim({ limit: 1, consumer: "a\nb" })).rejects.toMatchObject({ code: "invalid_request" });
  });
});
