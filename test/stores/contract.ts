import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createPitstop } from "../../src/index.ts";
import type { Store, StoredMessage } from "../../src/types.ts";
import { manualClock } from "../support/clock.ts";

/** How a store's test file hands the suite a store. */
export interface StoreFactory {
  /** A store over empty storage. Called before every test. */
  make(): Promise<Store>;
  /** Runs once after the suite. */
  cleanup?(): Promise<void>;
}

const T0 = Date.parse("2026-03-01T12:00:00Z");
const lane = "topic:default";

function record(id: string, dueAt: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id, message: { id, n: 1 }, lane, topic: "default", at: dueAt, dueAt, attempts: 0, ...extra };
}

const claimReq = (now: number, limit = 10, token = "tok-" + now) => ({ lane, now, lockedUntil: now + 60_000, limit, token });

/**
 * The one suite every store must pass: the Store contract itself, then the engine's delivery
 * rules running over the store with a manual clock.
 */
export function testStore(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    const made: Store[] = [];
    beforeEach(async () => {
      store = await factory.make();
      made.push(store);
    });
    afterEach(async () => {
      await Promise.all(made.splice(0).map((s) => s.dispose?.()));
    });
    afterAll(async () => {
      await factory.cleanup?.();
    });

    it("puts, replaces, gets and removes by id", async () => {
      expect(await store.put(record("a", T0))).toBe("created");
      expect(await store.put(record("a", T0 + 5, { message: { id: "a", v: 2 } }))).toBe("replaced");
      const got = await store.get("a");
      expect(got?.message).toEqual({ id: "a", v: 2 });
      expect(got?.dueAt).toBe(T0 + 5);
      expect(await store.get("missing")).toBeUndefined();
      expect(await store.remove("a")).toBe(true);
      expect(await store.remove("a")).toBe(false);
      expect(await store.get("a")).toBeUndefined();
    });

    it("keeps every field of a record, and message bodies exactly, operator-like keys included", async () => {
      const message = {
        id: "odd",
        $set: { x: 1 },
        "a.b": "dotted",
        nested: { $gt: 5, "c.d": [1, "2", { $where: "x" }], date: "2026-01-01T00:00:00Z" },
        unicode: "héllo ✓ \u2028",
        big: 9007199254740991,
        float: 0.1,
        nil: null,
        empty: {},
        list: [],
      };
      const full = record("odd", T0, {
        message,
        topic: "t",
        lane: "topic:t",
        start: T0 - 1000,
        interval: "P1M",
        end: T0 + 10_000_000,
        attempts: 3,
        lastError: "boom",
        callback: "https://example.com/hook",
      });
      await store.put(full);
      const got = await store.get("odd");
      expect(got).toEqual(full);
      expect(JSON.stringify(got!.message)).toBe(JSON.stringify(message));
    });

    it("keeps the schedule fields of cron and zoned records, through claims and settles", async () => {
      const cron = record("cron", T0, { cron: "0 9 * * MON-FRI", tz: "Europe/Berlin", missed: "skip", end: T0 + 86_400_000 });
      const zoned = record("zoned", T0, { start: T0, interval: "P1D", tz: "America/New_York", missed: "all" });
      await store.put(cron);
      await store.put(zoned);
      expect(await store.get("cron")).toEqual(cron);
      expect(await store.get("zoned")).toEqual(zoned);
      await store.claim(claimReq(T0, 10, "sched"));
      await store.settle([
        { id: "cron", token: "sched", now: T0, action: { kind: "update", dueAt: T0 + 5, at: T0 + 5, attempts: 0 } },
        { id: "zoned", token: "sched", now: T0, action: { kind: "update", dueAt: T0 + 7 } },
      ]);
      expect(await store.get("cron")).toEqual({ ...cron, at: T0 + 5, dueAt: T0 + 5 });
      expect(await store.get("zoned")).toEqual({ ...zoned, dueAt: T0 + 7, attempts: 1 });
    });

    it("returns copies: changing what get returned changes nothing stored", async () => {
      await store.put(record("c", T0));
      const got = (await store.get("c"))!;
      got.dueAt = 0;
      got.attempts = 99;
      expect((await store.get("c"))!.dueAt).toBe(T0);
      expect((await store.get("c"))!.attempts).toBe(0);
    });

    it("claims only due records of the lane, earliest first, up to the limit, and locks them", async () => {
      await store.put(record("late", T0 + 1000));
      await store.put(record("second", T0 - 10));
      await store.put(record("first", T0 - 20));
      await store.put(record("third", T0));
      await store.put(record("other-lane", T0 - 100, { topic: "x", lane: "topic:x" }));
      const claimed = await store.claim(claimReq(T0, 2, "tok1"));
      expect(claimed.map((r) => r.id)).toEqual(["first", "second"]);
      for (const r of claimed) {
        expect(r.lockToken).toBe("tok1");
        expect(r.lockedUntil).toBe(T0 + 60_000);
        expect(r.dueAt).toBe(T0 + 60_000);
        expect(r.attempts).toBe(1);
      }
      expect((await store.claim(claimReq(T0, 10, "tok2"))).map((r) => r.id)).toEqual(["third"]);
      expect(await store.claim(claimReq(T0, 10, "tok3"))).toEqual([]);
      expect((await store.get("late"))!.lockToken).toBeUndefined();
    });

    it("makes a record claimable again when its lock expires, counting the attempt", async () => {
      await store.put(record("e", T0));
      await store.claim(claimReq(T0, 1, "t1"));
      expect(await store.claim(claimReq(T0 + 59_999, 1, "t2"))).toEqual([]);
      const again = await store.claim(claimReq(T0 + 60_000, 1, "t3"));
      expect(again.map((r) => [r.id, r.attempts, r.lockToken])).toEqual([["e", 2, "t3"]]);
    });

    it("never hands one record to two concurrent claims", async () => {
      for (let i = 0; i < 60; i++) await store.put(record(`m${i}`, T0 - i));
      const batches = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claim(claimReq(T0, 10, `c${i}`))));
      const ids = batches.flat().map((r) => r.id);
      expect(ids.length).toBe(60);
      expect(new Set(ids).size).toBe(60);
    });

    it("settles only with the current token of an unexpired lock", async () => {
      await store.put(record("s1", T0));
      await store.put(record("s2", T0));
      await store.put(record("s3", T0));
      await store.claim(claimReq(T0, 3, "good"));
      const results = await store.settle([
        { id: "s1", token: "good", now: T0 + 1, action: { kind: "delete" } },
        { id: "s2", token: "bad", now: T0 + 1, action: { kind: "delete" } },
        { id: "nope", token: "good", now: T0 + 1, action: { kind: "delete" } },
        { id: "s3", token: "good", now: T0 + 60_000, action: { kind: "delete" } },
      ]);
      expect(results).toEqual(["ok", "lock_lost", "not_found", "lock_lost"]);
      expect(await store.get("s1")).toBeUndefined();
      expect((await store.get("s2"))!.lockToken).toBe("good");
      expect(await store.get("s3")).toBeDefined();
    });

    it("applies an update settle and clears the lock; a second settle with the same token loses", async () => {
      await store.put(record("u", T0, { lastError: "old" }));
      await store.claim(claimReq(T0, 1, "k"));
      const [first, second] = await store.settle([
        { id: "u", token: "k", now: T0, action: { kind: "update", dueAt: T0 + 500, at: T0 + 400, attempts: 0, lastError: null } },
        { id: "u", token: "k", now: T0, action: { kind: "delete" } },
      ]);
      expect([first, second]).toEqual(["ok", "lock_lost"]);
      const got = (await store.get("u"))!;
      expect(got).toMatchObject({ dueAt: T0 + 500, at: T0 + 400, attempts: 0 });
      expect(got.lockToken).toBeUndefined();
      expect(got.lockedUntil).toBeUndefined();
      expect(got.lastError).toBeUndefined();

      await store.claim(claimReq(T0 + 500, 1, "k2"));
      expect(await store.settle([{ id: "u", token: "k2", now: T0 + 501, action: { kind: "update", dueAt: T0 + 900, lastError: "nope" } }])).toEqual(["ok"]);
      expect(await store.get("u")).toMatchObject({ dueAt: T0 + 900, at: T0 + 400, attempts: 1, lastError: "nope" });
      await store.claim(claimReq(T0 + 900, 1, "k3"));
      await store.settle([{ id: "u", token: "k3", now: T0 + 901, action: { kind: "update", dueAt: T0 + 950 } }]);
      expect((await store.get("u"))!.lastError).toBe("nope");
    });

    it("drops the lock when a locked record is replaced", async () => {
      await store.put(record("r", T0));
      await store.claim(claimReq(T0, 1, "old"));
      await store.put(record("r", T0 + 10, { message: { id: "r", v: 2 } }));
      expect(await store.settle([{ id: "r", token: "old", now: T0 + 1, action: { kind: "delete" } }])).toEqual(["lock_lost"]);
      expect(await store.claim(claimReq(T0 + 9, 1, "x"))).toEqual([]);
      const [claimed] = await store.claim(claimReq(T0 + 10, 1, "new"));
      expect(claimed.message).toEqual({ id: "r", v: 2 });
      expect(claimed.attempts).toBe(1);
    });

    it("reports the lane's earliest due time, locked records included", async () => {
      expect(await store.nextDueAt(lane)).toBeUndefined();
      await store.put(record("n1", T0 + 300));
      await store.put(record("n2", T0 + 100));
      await store.put(record("n3", T0 + 50, { topic: "y", lane: "topic:y" }));
      expect(await store.nextDueAt(lane)).toBe(T0 + 100);
      await store.claim({ ...claimReq(T0 + 100, 1, "l"), lockedUntil: T0 + 200 });
      expect(await store.nextDueAt(lane)).toBe(T0 + 200);
      await store.remove("n1");
      await store.remove("n2");
      expect(await store.nextDueAt(lane)).toBeUndefined();
    });

    it("can be disposed twice", async () => {
      const other = await factory.make();
      made.push(other);
      await other.dispose?.();
      await other.dispose?.();
    });

    describe("delivery rules over this store", () => {
      const setup = () => {
        const clock = manualClock(T0);
        const pitstop = createPitstop({ store, clock, lockTime: "PT1M" });
        const due = async () => pitstop.claim({ limit: 10 });
        return { clock, pitstop, due };
      };

      it("emits a one-shot message at its time, with its id, and deletes it on ack", async () => {
        const { clock, pitstop, due } = setup();
        const { id } = await pitstop.store({ foo: "bar" }, T0 + 1000);
        expect(id).toMatch(/^[0-9a-f-]{36}$/);
        expect(await due()).toEqual([]);
        clock.advance(1000);
        const [d] = await due();
        expect(d).toMatchObject({ id, message: { id, foo: "bar" }, attempt: 1, at: T0 + 1000 });
        await d.ack();
        expect(await pitstop.get(id)).toBeUndefined();
        await expect(pitstop.ack(id, d.token)).rejects.toMatchObject({ code: "not_found" });
      });

      it("walks a recurring message through its occurrences, end included, then deletes it", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.store({ id: "rec" }, T0, T0 + 2 * 3_600_000, "PT1H");
        const seen: number[] = [];
        for (let i = 0; i < 3; i++) {
          clock.set(T0 + i * 3_600_000 + 5);
          const [d] = await due();
          seen.push(d.at);
          await d.ack();
        }
        expect(seen).toEqual([T0, T0 + 3_600_000, T0 + 7_200_000]);
        expect(await pitstop.get("rec")).toBeUndefined();
      });

      it("skips missed occurrences: one catch-up delivery after an outage, then the next future one", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.store({ id: "tick" }, T0, null, "PT1M");
        clock.advance(10 * 60_000 + 30_000);
        const first = await due();
        expect(first.length).toBe(1);
        await first[0].ack();
        expect(await due()).toEqual([]);
        expect((await pitstop.get("tick"))!.at).toBe(new Date(T0 + 11 * 60_000).toISOString());
      });

      it("walks a cron schedule in its zone: weekdays at 09:00 in Berlin across the DST change", async () => {
        const { clock, pitstop, due } = setup();
        const start = Date.parse("2026-03-26T00:00:00Z");
        clock.set(start);
        const stored = await pitstop.schedule({ message: { id: "weekday" }, cron: "0 9 * * MON-FRI", tz: "Europe/Berlin" });
        expect(stored).toMatchObject({ at: "2026-03-26T08:00:00.000Z", cron: "0 9 * * MON-FRI", tz: "Europe/Berlin", missed: "once" });
        const seen: string[] = [];
        for (let i = 0; i < 3; i++) {
          const view = (await pitstop.get("weekday"))!;
          clock.set(Date.parse(view.at) + 5);
          const [d] = await due();
          seen.push(new Date(d.at).toISOString());
          await d.ack();
        }
        expect(seen).toEqual(["2026-03-26T08:00:00.000Z", "2026-03-27T08:00:00.000Z", "2026-03-30T07:00:00.000Z"]);
        expect((await pitstop.get("weekday"))!.upcoming).toEqual(["2026-03-31T07:00:00.000Z", "2026-04-01T07:00:00.000Z", "2026-04-02T07:00:00.000Z"]);
      });

      it("after 3 days down on an hourly cron: once delivers one, skip none, all each missed occurrence in order", async () => {
        const { clock, pitstop, due } = setup();
        for (const missed of ["once", "skip", "all"] as const) {
          await pitstop.schedule({ message: { id: missed }, cron: "0 * * * *", missed });
        }
        clock.set(T0 + 72 * 3_600_000 + 60_000);
        const delivered: Record<string, number[]> = { once: [], skip: [], all: [] };
        for (let ds = await due(); ds.length > 0; ds = await due()) {
          for (const d of ds) {
            delivered[d.id].push(d.at);
            await d.ack();
          }
        }
        expect(delivered.once).toEqual([T0]);
        expect(delivered.skip).toEqual([]);
        expect(delivered.all).toEqual(Array.from({ length: 73 }, (_, k) => T0 + k * 3_600_000));
        for (const id of ["once", "skip", "all"]) {
          expect((await pitstop.get(id))!.at).toBe(new Date(T0 + 73 * 3_600_000).toISOString());
        }
      });

      it("re-emits after the lock expires; the expired token then gets lock_lost", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.store({ id: "slow" }, T0);
        const [first] = await due();
        clock.advance(59_999);
        expect(await due()).toEqual([]);
        clock.advance(1);
        await expect(first.ack()).rejects.toMatchObject({ code: "lock_lost" });
        const [second] = await due();
        expect(second.attempt).toBe(2);
        expect(second.token).not.toBe(first.token);
        await expect(pitstop.ack("slow", first.token)).rejects.toMatchObject({ code: "lock_lost" });
        await pitstop.ack("slow", second.token);
      });

      it("nacks with backoff, retryIn and lastError, keeping the occurrence time", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.store({ id: "n" }, T0);
        const [d1] = await due();
        await pitstop.nack("n", d1.token, { error: "db down" });
        expect(await pitstop.get("n")).toMatchObject({ lastError: "db down", attempts: 1, locked: false });
        clock.advance(999);
        expect(await due()).toEqual([]);
        clock.advance(1);
        const [d2] = await due();
        expect(d2).toMatchObject({ attempt: 2, at: T0 });
        await d2.nack();
        clock.advance(1999);
        expect(await due()).toEqual([]);
        clock.advance(1);
        const [d3] = await due();
        await d3.nack({ retryIn: "PT10S", error: "again" });
        clock.advance(9_999);
        expect(await due()).toEqual([]);
        clock.advance(1);
        const [d4] = await due();
        expect(d4.attempt).toBe(4);
        expect((await pitstop.get("n"))!.lastError).toBe("again");
      });

      it("replacing a locked message invalidates its token and emits the new version at its time", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.store({ id: "abc", foo: "bar" }, T0);
        const [d] = await due();
        const replaced = await pitstop.store({ id: "abc", foo: "update" }, T0 + 5000);
        expect(replaced.replaced).toBe(true);
        await expect(d.ack()).rejects.toMatchObject({ code: "lock_lost" });
        expect(await due()).toEqual([]);
        clock.advance(5000);
        const [d2] = await due();
        expect(d2).toMatchObject({ message: { id: "abc", foo: "update" }, attempt: 1 });
      });

      it("remove deletes a locked message; its ack then gets not_found", async () => {
        const { pitstop, due } = setup();
        await pitstop.store({ id: "gone" }, T0);
        const [d] = await due();
        expect(await pitstop.remove("gone")).toBe(true);
        expect(await pitstop.remove("gone")).toBe(false);
        await expect(pitstop.ack("gone", d.token)).rejects.toMatchObject({ code: "not_found" });
      });

      it("acks many at once and reports each outcome", async () => {
        const { pitstop, due } = setup();
        for (let i = 0; i < 5; i++) await pitstop.store({ id: `b${i}` }, T0);
        const ds = await due();
        const outcomes = await pitstop.ackMany([
          ...ds.map((d) => ({ id: d.id, token: d.token })),
          { id: "b0", token: ds[0].token },
          { id: "zzz", token: "t" },
        ]);
        expect(outcomes.map((o) => o.result)).toEqual(["ok", "ok", "ok", "ok", "ok", "not_found", "not_found"]);
      });
    });
  });
}
