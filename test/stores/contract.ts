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

    it("extends a lock held with the current token: same token, later lockedUntil and dueAt", async () => {
      for (const id of ["x1", "x2", "x3", "x4"]) await store.put(record(id, T0));
      await store.claim({ ...claimReq(T0, 4, "lease"), consumer: "worker-1" });
      expect(await store.settle([{ id: "x1", token: "lease", now: T0 + 1, action: { kind: "extend", lockedUntil: T0 + 200_000 } }])).toEqual(["ok"]);
      expect(await store.settle([{ id: "x2", token: "stale", now: T0 + 1, action: { kind: "extend", lockedUntil: T0 + 200_000 } }])).toEqual(["lock_lost"]);
      const results = await store.settle([
        { id: "x1", token: "lease", now: T0 + 1, action: { kind: "extend", lockedUntil: T0 + 300_000 } },
        { id: "x2", token: "stale", now: T0 + 1, action: { kind: "extend", lockedUntil: T0 + 300_000 } },
        { id: "x3", token: "lease", now: T0 + 60_000, action: { kind: "extend", lockedUntil: T0 + 300_000 } },
        { id: "none", token: "lease", now: T0 + 1, action: { kind: "extend", lockedUntil: T0 + 300_000 } },
        { id: "x4", token: "lease", now: T0 + 1, action: { kind: "extend", lockedUntil: T0 + 120_000 } },
        { id: "x4", token: "lease", now: T0 + 2, action: { kind: "delete" } },
      ]);
      expect(results).toEqual(["ok", "lock_lost", "lock_lost", "not_found", "ok", "ok"]);
      expect(await store.get("x1")).toMatchObject({ lockToken: "lease", lockedBy: "worker-1", lockedUntil: T0 + 300_000, dueAt: T0 + 300_000, attempts: 1 });
      expect(await store.get("x2")).toMatchObject({ lockToken: "lease", lockedUntil: T0 + 60_000, dueAt: T0 + 60_000 });
      expect(await store.get("x4")).toBeUndefined();
      // Past the original lock time the extended record is still locked, and its token still settles.
      expect((await store.claim(claimReq(T0 + 60_000, 10, "late"))).map((r) => r.id)).toEqual(["x2", "x3"]);
      expect(await store.nextDueAt(lane)).toBe(T0 + 120_000);
      expect(await store.settle([{ id: "x1", token: "lease", now: T0 + 299_999, action: { kind: "update", dueAt: T0 + 400_000 } }])).toEqual(["ok"]);
      const settled = (await store.get("x1"))!;
      expect(settled).toMatchObject({ dueAt: T0 + 400_000 });
      expect(settled.lockToken).toBeUndefined();
    });

    it("records the claiming consumer as lockedBy and clears it with the lock", async () => {
      await store.put(record("w1", T0));
      await store.put(record("w2", T0));
      const claimed = await store.claim({ ...claimReq(T0, 2, "t1"), consumer: "sse-1" });
      expect(claimed.map((r) => r.lockedBy)).toEqual(["sse-1", "sse-1"]);
      expect(await store.get("w1")).toMatchObject({ lockedBy: "sse-1", lockToken: "t1" });
      // An expired lock claimed again without a consumer keeps no stale name.
      const [again] = await store.claim({ ...claimReq(T0 + 60_000, 1, "t2") });
      expect(again.id).toBe("w1");
      expect(again.lockedBy).toBeUndefined();
      expect((await store.get("w1"))!.lockedBy).toBeUndefined();
      await store.settle([{ id: "w2", token: "t1", now: T0 + 1, action: { kind: "update", dueAt: T0 + 10 } }]);
      expect((await store.get("w2"))!.lockedBy).toBeUndefined();
      await store.claim({ ...claimReq(T0 + 10, 1, "t3"), consumer: "webhooks" });
      expect((await store.get("w2"))!.lockedBy).toBe("webhooks");
      await store.put(record("w2", T0 + 20));
      expect((await store.get("w2"))!.lockedBy).toBeUndefined();
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

    it("putMany stores many in one call: created or replaced in order, locks dropped, fields kept", async (ctx) => {
      if (!store.putMany) return ctx.skip(`${name} has no putMany (the engine falls back to put)`);
      await store.put(record("old", T0));
      await store.claim(claimReq(T0, 1, "held"));
      expect(await store.putMany([])).toEqual([]);
      const batch = [record("n1", T0 + 2), record("old", T0 + 5, { message: { id: "old", v: 2 }, topic: "t", lane: "topic:t" }), record("n2", T0 + 1, { interval: "PT1H", start: T0 + 1 })];
      expect(await store.putMany(batch)).toEqual(["created", "replaced", "created"]);
      for (const r of batch) expect(await store.get(r.id)).toEqual(r);
      expect(await store.settle([{ id: "old", token: "held", now: T0 + 1, action: { kind: "delete" } }])).toEqual(["lock_lost"]);
      expect((await store.claim(claimReq(T0 + 10))).map((r) => r.id)).toEqual(["n2", "n1"]);
      expect((await store.claim({ ...claimReq(T0 + 10), lane: "topic:t" })).map((r) => r.message)).toEqual([{ id: "old", v: 2 }]);
    });

    it("putMany stores a thousand records, each claimable once", async (ctx) => {
      if (!store.putMany) return ctx.skip(`${name} has no putMany (the engine falls back to put)`);
      const batch = Array.from({ length: 1000 }, (_, i) => record(`k${i}`, T0 + (i % 7)));
      const outcomes = await store.putMany(batch);
      expect(outcomes.filter((o) => o === "created")).toHaveLength(1000);
      const claimed = await store.claim(claimReq(T0 + 10, 2000));
      expect(new Set(claimed.map((r) => r.id)).size).toBe(1000);
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

    it("moves a record to another lane on an update settle, with its failure fields", async () => {
      await store.put(record("d", T0));
      const [c] = await store.claim(claimReq(T0));
      const lastFailure = { at: T0, failedAt: T0 + 5, attempts: 3, lastError: "boom" };
      const update = { kind: "update" as const, dueAt: T0 + 5, lane: "dead:default", deadAt: T0 + 5, failures: 2, lastFailure, lastError: "boom" };
      expect(await store.settle([{ id: "d", token: c.lockToken!, now: T0 + 1, action: update }])).toEqual(["ok"]);
      expect(await store.get("d")).toMatchObject({ lane: "dead:default", dueAt: T0 + 5, deadAt: T0 + 5, failures: 2, lastFailure, lastError: "boom" });
      expect(await store.claim(claimReq(T0 + 10_000))).toEqual([]);
      expect(await store.claim({ ...claimReq(T0 + 10_000), lane: "dead:default" })).toHaveLength(1);
    });

    it("counts each lane's records and its locked ones", async () => {
      await store.put(record("a", T0));
      await store.put(record("b", T0));
      await store.put(record("c", T0, { lane: "dead:default", deadAt: T0 }));
      await store.claim(claimReq(T0, 1));
      const counts = await store.countLanes(T0 + 1);
      expect(counts.get(lane)).toEqual({ total: 2, locked: 1 });
      expect(counts.get("dead:default")).toEqual({ total: 1, locked: 0 });
      expect((await store.countLanes(T0 + 120_000)).get(lane)).toEqual({ total: 2, locked: 0 });
    });

    it("moves an unlocked record between lanes (a redrive) only from the lane given, and lists a lane's ids in due order", async () => {
      await store.put(record("x", T0 + 20, { lane: "dead:default", deadAt: T0 + 20, attempts: 5 }));
      await store.put(record("y", T0 + 10, { lane: "dead:default", deadAt: T0 + 10, attempts: 5 }));
      expect(await store.laneIds("dead:default")).toEqual(["y", "x"]);
      expect(await store.move("x", "topic:other", { lane, dueAt: T0 })).toBe(false);
      expect(await store.move("nope", "dead:default", { lane, dueAt: T0 })).toBe(false);
      expect(await store.move("x", "dead:default", { lane, dueAt: T0 + 30 })).toBe(true);
      const moved = await store.get("x");
      expect(moved).toMatchObject({ lane, dueAt: T0 + 30, attempts: 0 });
      expect(moved?.deadAt).toBeUndefined();
      expect(await store.laneIds("dead:default")).toEqual(["y"]);
      expect(await store.nextDueAt(lane)).toBe(T0 + 30);
    });

    it("keeps topic policies, replaced and deleted by topic", async () => {
      expect(await store.policies()).toEqual(new Map());
      await store.setPolicy("a", { maxAttempts: 3, backoff: { baseMs: 10 } });
      await store.setPolicy("b", { ordered: true });
      await store.setPolicy("a", { lockTimeMs: 5000 });
      expect(await store.policies()).toEqual(new Map([["a", { lockTimeMs: 5000 }], ["b", { ordered: true }]]));
      await store.setPolicy("b", undefined);
      expect(await store.policies()).toEqual(new Map([["a", { lockTimeMs: 5000 }]]));
    });

    it("claims only the head of an ordered lane, and only while it is due and unlocked", async () => {
      await store.put(record("late", T0, { at: T0 + 50, seq: 1 }));
      await store.put(record("first", T0 + 20, { at: T0, seq: 3 }));
      await store.put(record("second", T0, { at: T0, seq: 4 }));
      const ordered = (now: number) => ({ ...claimReq(now, 5), ordered: true });
      expect(await store.claim(ordered(T0 + 10))).toEqual([]);
      expect(await store.nextDueAt(lane, true)).toBe(T0 + 20);
      const [head] = await store.claim(ordered(T0 + 20));
      expect(head).toMatchObject({ id: "first", attempts: 1 });
      expect(await store.claim(ordered(T0 + 30))).toEqual([]);
      expect(await store.nextDueAt(lane, true)).toBe(T0 + 20 + 60_000);
      await store.settle([{ id: "first", token: head.lockToken!, now: T0 + 40, action: { kind: "delete" } }]);
      expect((await store.claim(ordered(T0 + 40))).map((r) => r.id)).toEqual(["second"]);
    });

    describe("listing", () => {
      /** Every page of the lane, read with `limit`, running `between` (given the pages so far) after each page but the last. */
      const allPages = async (limit: number, between: (pages: StoredMessage[][]) => Promise<void> = async () => {}, locked?: boolean) => {
        const pages: StoredMessage[][] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.list({ lane, after, limit, locked, now: T0 });
          pages.push(page.records);
          if (page.next === undefined) return pages;
          expect(page.records.length).toBe(limit);
          after = page.next;
          await between(pages);
        }
      };
      const ids = (records: StoredMessage[]) => records.map((r) => r.id);

      it("lists a lane in due-time order, locked records at their lockedUntil, other lanes apart", async () => {
        expect(await store.list({ lane, limit: 10, now: T0 })).toEqual({ records: [] });
        await store.put(record("c", T0 + 30));
        await store.put(record("a", T0 - 10));
        await store.put(record("b", T0 + 20));
        await store.put(record("other", T0, { topic: "x", lane: "topic:x" }));
        await store.claim({ ...claimReq(T0, 1, "held"), lockedUntil: T0 + 25 });
        const page = await store.list({ lane, limit: 10, now: T0 });
        expect(ids(page.records)).toEqual(["b", "a", "c"]);
        expect(page.next).toBeUndefined();
        expect(page.records[1]).toMatchObject({ lockToken: "held", lockedUntil: T0 + 25, dueAt: T0 + 25, attempts: 1, message: { id: "a", n: 1 } });
        page.records[0].dueAt = 0;
        expect((await store.get("b"))!.dueAt).toBe(T0 + 20);
        expect(ids((await store.list({ lane: "topic:x", limit: 10, now: T0 })).records)).toEqual(["other"]);
        expect(await store.list({ lane: "topic:none", limit: 10, now: T0 })).toEqual({ records: [] });
      });

      it("pages through 250 records with limit 100, ties on dueAt included, each exactly once", async () => {
        for (let i = 0; i < 250; i++) await store.put(record(`p${String(i).padStart(3, "0")}`, T0 + Math.floor(i / 7)));
        const pages = await allPages(100);
        expect(pages.map((p) => p.length)).toEqual([100, 100, 50]);
        const listed = pages.flat();
        expect(new Set(ids(listed)).size).toBe(250);
        expect(listed.map((r) => r.dueAt)).toEqual(listed.map((r) => r.dueAt).sort((x, y) => x - y));
        const exact = await allPages(125);
        expect(exact.map((p) => p.length)).toEqual([125, 125]);
        expect(ids(exact.flat())).toEqual(ids(listed));
      });

      it("lists records that stay exactly once while others are added and removed between pages", async () => {
        for (let i = 0; i < 250; i++) await store.put(record(`s${i}`, T0 + i * 10));
        const addedAhead: string[] = [];
        const removedAhead = new Set<string>();
        const pages = await allPages(100, async (sofar) => {
          const page = sofar.length;
          const last = sofar[page - 1].at(-1)!;
          await store.put(record(`behind-${page}`, last.dueAt - 5));
          await store.put(record(`far-behind-${page}`, T0 - 5));
          await store.put(record(`ahead-${page}`, last.dueAt + 5));
          await store.put(record(`far-ahead-${page}`, T0 + 5000 + page));
          addedAhead.push(`ahead-${page}`, `far-ahead-${page}`);
          const lastS = Number(sofar.flat().filter((r) => r.id.startsWith("s")).at(-1)!.id.slice(1));
          await store.remove(`s${lastS - 3}`);
          for (const i of [lastS + 2, lastS + 40]) {
            await store.remove(`s${i}`);
            removedAhead.add(`s${i}`);
          }
        });
        const listed = ids(pages.flat());
        expect(new Set(listed).size).toBe(listed.length);
        // Removed after it was listed, a record was listed once; removed ahead of the cursor, never.
        expect(listed.filter((id) => id.startsWith("s"))).toEqual(Array.from({ length: 250 }, (_, i) => `s${i}`).filter((id) => !removedAhead.has(id)));
        expect(listed.filter((id) => !id.startsWith("s")).sort()).toEqual(addedAhead.sort());
      });

      it("filters on the lock state at now", async () => {
        for (let i = 0; i < 6; i++) await store.put(record(`f${i}`, T0 - 10 + i));
        await store.claim({ ...claimReq(T0, 2, "h"), lockedUntil: T0 + 100 });
        await store.claim({ ...claimReq(T0, 1, "e"), lockedUntil: T0 });
        expect(ids((await allPages(1, undefined, true)).flat())).toEqual(["f0", "f1"]);
        expect(ids((await allPages(2, undefined, false)).flat())).toEqual(["f3", "f4", "f5", "f2"]);
        expect(ids((await allPages(4)).flat())).toEqual(["f3", "f4", "f5", "f2", "f0", "f1"]);
      });

      it("refuses a cursor it did not give out", async () => {
        await store.put(record("x", T0));
        for (const after of ["", "garbage", "[1]", "12", "{}", "null"]) {
          await expect(store.list({ lane, after, limit: 10, now: T0 }), after).rejects.toMatchObject({ code: "invalid_request" });
        }
      });
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

      it("sends a message dead after maxAttempts nacks, or at once on a final nack, and redrives it", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.setPolicy("default", { maxAttempts: 2, backoff: { base: 10 } });
        await pitstop.schedule({ message: { id: "flaky" } });
        let [d] = await due();
        await d.nack({ error: "first" });
        clock.advance(10);
        [d] = await due();
        expect(d.attempt).toBe(2);
        await d.nack({ error: "second" });
        expect(await pitstop.get("flaky")).toMatchObject({ state: "dead", attempts: 2, lastError: "second", failedAt: new Date(T0 + 10).toISOString() });
        clock.advance(60_000);
        expect(await due()).toEqual([]);
        expect(await pitstop.topic("default")).toMatchObject({ counts: { pending: 0, locked: 0, dead: 1 }, policy: { maxAttempts: 2 } });
        const view = await pitstop.redrive("flaky");
        expect(view).toMatchObject({ state: "pending", attempts: 0 });
        [d] = await due();
        expect(d).toMatchObject({ id: "flaky", attempt: 1 });
        await d.nack({ final: true, error: "give up" });
        expect(await pitstop.get("flaky")).toMatchObject({ state: "dead", lastError: "give up", attempts: 1 });
        await expect(pitstop.redrive("nope")).rejects.toMatchObject({ code: "not_found" });
        expect(await pitstop.redriveTopic("default")).toBe(1);
        await expect(pitstop.redrive("flaky")).rejects.toMatchObject({ code: "invalid_state" });
      });

      it("sends a message dead when the lock of its last attempt expires, without delivering it again", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.schedule({ message: { id: "silent" }, maxAttempts: 1 });
        expect(await due()).toHaveLength(1);
        clock.advance(60_000);
        expect(await due()).toEqual([]);
        expect(await pitstop.get("silent")).toMatchObject({ state: "dead", attempts: 1, lastError: expect.stringMatching(/lock expired/) });
        expect(await pitstop.purgeDead("default")).toBe(1);
        expect(await pitstop.get("silent")).toBeUndefined();
      });

      it("records a failed occurrence of a recurring message and moves it on; it never dies", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.schedule({ message: { id: "daily" }, at: T0, interval: "PT1H", maxAttempts: 1 });
        let [d] = await due();
        await d.nack({ error: "down" });
        expect(await pitstop.get("daily")).toMatchObject({
          state: "pending",
          attempts: 0,
          at: new Date(T0 + 3_600_000).toISOString(),
          failures: 1,
          lastFailure: { at: new Date(T0).toISOString(), failedAt: new Date(T0).toISOString(), attempts: 1, lastError: "down" },
        });
        clock.advance(3_600_000);
        [d] = await due();
        await d.ack();
        expect(await pitstop.get("daily")).toMatchObject({ failures: 1, at: new Date(T0 + 7_200_000).toISOString() });
      });

      it("gives a message its own lock time, over the topic's", async () => {
        const { clock, pitstop, due } = setup();
        await pitstop.schedule({ message: { id: "quick" }, lockTime: "PT5S" });
        await pitstop.schedule({ message: { id: "usual" } });
        expect(await pitstop.get("quick")).toMatchObject({ lockTime: "PT5S" });
        const ds = await due();
        expect(Object.fromEntries(ds.map((d) => [d.id, d.lockedUntil - T0]))).toEqual({ quick: 5000, usual: 60_000 });
        clock.advance(5000);
        expect((await due()).map((d) => [d.id, d.attempt])).toEqual([["quick", 2]]);
        await expect(pitstop.schedule({ message: { id: "bad" }, lockTime: "P1M" })).rejects.toMatchObject({ code: "invalid_request", issues: [{ path: ["lockTime"] }] });
      });

      it("keeps topic policies, with defaults filled in, and applies their backoff and lock time", async () => {
        const { clock, pitstop, due } = setup();
        expect(await pitstop.topic("quiet")).toBeUndefined();
        const policy = await pitstop.setPolicy("default", { lockTime: "PT10S", backoff: { base: 100, factor: 3, max: "PT1S" } });
        expect(policy).toEqual({ maxAttempts: 20, lockTime: "PT10S", backoff: { base: "PT0.1S", factor: 3, max: "PT1S" }, ordered: false });
        await pitstop.schedule({ message: { id: "p" } });
        let [d] = await due();
        expect(d.lockedUntil).toBe(T0 + 10_000);
        const delays: number[] = [];
        for (let i = 0; i < 4; i++) {
          const before = clock.now();
          await d.nack();
          const record = (await store.get("p"))!;
          delays.push(record.dueAt - before);
          clock.set(record.dueAt);
          [d] = await due();
        }
        expect(delays).toEqual([100, 300, 900, 1000]);
        await pitstop.resetPolicy("default");
        expect((await pitstop.topic("default"))!.policy).toEqual({ maxAttempts: 20, lockTime: "PT1M", backoff: { base: "PT1S", factor: 2, max: "PT1M" }, ordered: false });
        expect((await pitstop.topics()).map((t) => t.name)).toEqual(["default"]);
      });

      it("delivers an ordered topic one at a time in at order; a failing head holds it back, other topics go on", async () => {
        const { clock, pitstop } = setup();
        await pitstop.setPolicy("fifo", { ordered: true, maxAttempts: 2, backoff: { base: 100 } });
        for (const [id, at] of [["b", T0 + 2], ["a", T0 + 1], ["c", T0 + 3]] as const) await pitstop.schedule({ message: { id }, topic: "fifo", at });
        await pitstop.schedule({ message: { id: "other" }, topic: "free", at: T0 });
        const fifo = () => pitstop.claim({ topic: "fifo", limit: 10 });
        clock.advance(10);
        let ds = await fifo();
        expect(ds.map((d) => d.id)).toEqual(["a"]);
        expect(await fifo()).toEqual([]);
        expect((await pitstop.claim({ topic: "free", limit: 10 })).map((d) => d.id)).toEqual(["other"]);
        await ds[0].nack({ error: "not yet" });
        expect(await fifo()).toEqual([]);
        clock.advance(100);
        ds = await fifo();
        expect(ds.map((d) => [d.id, d.attempt])).toEqual([["a", 2]]);
        await ds[0].nack({ error: "never" });
        expect(await pitstop.get("a")).toMatchObject({ state: "dead" });
        ds = await fifo();
        expect(ds.map((d) => d.id)).toEqual(["b"]);
        await ds[0].ack();
        expect((await fifo()).map((d) => d.id)).toEqual(["c"]);
      });

      it("gives an ordered topic's head to one of two engines sharing the store, never both", async () => {
        const { clock, pitstop } = setup();
        const other = createPitstop({ store, clock, lockTime: "PT1M" });
        await pitstop.setPolicy("fifo", { ordered: true });
        await other.setPolicy("fifo", { ordered: true });
        for (let i = 0; i < 20; i++) await pitstop.schedule({ message: { id: `m${i}` }, topic: "fifo", at: T0 + i });
        clock.advance(100);
        const order: string[] = [];
        for (let round = 0; order.length < 20 && round < 100; round++) {
          const [x, y] = await Promise.all([pitstop.claim({ topic: "fifo", limit: 5 }), other.claim({ topic: "fifo", limit: 5 })]);
          const claimed = [...x, ...y];
          expect(claimed.length).toBeLessThanOrEqual(1);
          for (const d of claimed) {
            order.push(d.id);
            await d.ack();
          }
        }
        expect(order).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      });

      it("scheduleMany stores the good items, refuses the bad ones alone, and a repeated id acts as sequential schedules", async () => {
        const { pitstop, due } = setup();
        await pitstop.store({ id: "known", v: 0 }, T0);
        const outcomes = await pitstop.scheduleMany([
          { message: { id: "a" } },
          { message: { id: "" } },
          { message: { id: "dup", v: 1 }, topic: "other" },
          { message: { id: "known", v: 1 } },
          { message: { id: "b" }, at: "not a time" },
          { message: { id: "dup", v: 2 } },
          { message: { id: "dup", v: 3 } },
        ]);
        const summary = outcomes.map((o) => ("scheduled" in o ? (o.scheduled.replaced ? 200 : 201) : o.error.code));
        expect(summary).toEqual([201, "invalid_request", 201, 200, "invalid_request", 200, 200]);
        expect(outcomes[1]).toMatchObject({ error: { message: expect.stringContaining("id must not be empty") } });
        expect(outcomes[4]).toMatchObject({ error: { issues: [{ path: ["at"] }] } });
        expect((await pitstop.get("dup"))?.message).toEqual({ id: "dup", v: 3 });
        expect(await pitstop.get("b")).toBeUndefined();
        const ds = await due();
        expect(ds.map((d) => d.message).sort((x, y) => x.id.localeCompare(y.id))).toEqual([{ id: "a" }, { id: "dup", v: 3 }, { id: "known", v: 1 }]);
        expect((await pitstop.claim({ topic: "other", limit: 10 })).length).toBe(0);
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
