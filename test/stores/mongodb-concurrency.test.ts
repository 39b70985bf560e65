import { MongoClient } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPitstop, type Pitstop } from "../../src/index.ts";
import { mongoStore } from "../../src/stores/mongodb.ts";
import type { Store } from "../../src/types.ts";
import { startMongoDouble, type MongoDouble } from "../../tools/mongo-double/index.ts";

const lane = "topic:default";
let double: MongoDouble;

beforeAll(async () => {
  double = await startMongoDouble();
});
afterAll(async () => {
  await double?.close();
});

/** Claims and acks until nothing is left in the lane; returns the ids it was handed. */
async function drain(pitstop: Pitstop, store: Store): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const batch = await pitstop.claim({ limit: 25 });
    if (batch.length === 0) {
      // The other instance may still hold locks it is about to ack.
      if ((await store.nextDueAt(lane)) === undefined) return seen;
      await new Promise((resolve) => setTimeout(resolve, 5));
      continue;
    }
    seen.push(...batch.map((d) => d.id));
    await Promise.all(batch.map((d) => d.ack()));
  }
}

it("two pitstop instances sharing one MongoDB deliver every message exactly once", async () => {
  const [storeA, storeB] = [mongoStore({ url: double.uri }), mongoStore({ url: double.uri })];
  const a = createPitstop({ store: storeA });
  const b = createPitstop({ store: storeB });
  for (let i = 0; i < 300; i++) await a.store({ id: `m${i}`, n: i });

  const before = double.commandCounts();
  const [fromA, fromB] = await Promise.all([drain(a, storeA), drain(b, storeB)]);
  const after = double.commandCounts();
  const used = ["find", "update", "delete", "findAndModify"].map((name) => `${name} ${(after[name] ?? 0) - (before[name] ?? 0)}`);
  const all = [...fromA, ...fromB];
  console.log(`[measure] instance a delivered ${fromA.length}, instance b ${fromB.length}; commands: ${used.join(", ")}`);
  expect(all.length).toBe(300);
  expect(new Set(all).size).toBe(300);
  expect(new Set(all)).toEqual(new Set(Array.from({ length: 300 }, (_, i) => `m${i}`)));

  const client = new MongoClient(double.uri);
  expect(await client.db("pitstop").collection("messages").countDocuments()).toBe(0);
  await client.close();
  await Promise.all([a.close(), b.close()]);
});

it("an ordered topic has one delivery in flight across two pitstop instances on one MongoDB, in order", async () => {
  const [storeA, storeB] = [mongoStore({ url: double.uri, collection: "ordered" }), mongoStore({ url: double.uri, collection: "ordered" })];
  const a = createPitstop({ store: storeA });
  const b = createPitstop({ store: storeB });
  await a.setPolicy("fifo", { ordered: true });
  const t0 = Date.now() - 1000;
  for (let i = 0; i < 40; i++) await a.schedule({ message: { id: `o${i}` }, topic: "fifo", at: t0 + i });
  const order: string[] = [];
  let inFlight = 0;
  let overlaps = 0;
  const consume = async (pitstop: Pitstop) => {
    for (let idle = 0; order.length < 40 && idle < 2000; ) {
      const [d] = await pitstop.claim({ topic: "fifo", limit: 10 });
      if (!d) {
        idle++;
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      if (++inFlight > 1) overlaps++;
      order.push(d.id);
      // Handling takes a while; another claim landing in that window, before the ack starts, would be a second delivery in flight.
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight--;
      await d.ack();
    }
  };
  await Promise.all([consume(a), consume(b)]);
  console.log(`[measure] ordered topic over two instances: ${order.length} delivered, ${overlaps} overlaps`);
  expect(overlaps).toBe(0);
  expect(order).toEqual(Array.from({ length: 40 }, (_, i) => `o${i}`));
  await Promise.all([a.close(), b.close()]);
});

it("dead-letters under competing consumers on two instances: every message dead once, never held twice at once", async () => {
  const [storeA, storeB] = [mongoStore({ url: double.uri, collection: "dlq" }), mongoStore({ url: double.uri, collection: "dlq" })];
  const a = createPitstop({ store: storeA, log: () => {} });
  const b = createPitstop({ store: storeB, log: () => {} });
  await a.setPolicy("default", { maxAttempts: 3, backoff: { base: 0 } });
  for (let i = 0; i < 60; i++) await a.schedule({ message: { id: `d${i}` } });
  const held = new Set<string>();
  const deliveries = new Map<string, number>();
  let doubles = 0;
  const consume = async (pitstop: Pitstop) => {
    for (let idle = 0; idle < 200; ) {
      const batch = await pitstop.claim({ limit: 7 });
      if (batch.length === 0) {
        idle++;
        await new Promise((resolve) => setTimeout(resolve, 2));
        continue;
      }
      idle = 0;
      for (const d of batch) {
        if (held.has(d.id)) doubles++;
        held.add(d.id);
        deliveries.set(d.id, (deliveries.get(d.id) ?? 0) + 1);
      }
      await Promise.all(batch.map(async (d) => {
        held.delete(d.id);
        await d.nack({ error: `attempt ${d.attempt} failed`, retryIn: 0 });
      }));
    }
  };
  await Promise.all([consume(a), consume(b)]);
  const dead = await a.list({ state: "dead", limit: 1000 });
  console.log(`[measure] dead-lettering on two instances: ${dead.items.length} dead, ${[...deliveries.values()].reduce((x, y) => x + y, 0)} deliveries, ${doubles} double claims`);
  expect(doubles).toBe(0);
  expect(dead.items.map((v) => v.id).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `d${i}`).sort());
  expect(dead.items.every((v) => v.attempts === 3 && v.lastError === "attempt 3 failed")).toBe(true);
  expect([...deliveries.values()].every((n) => n === 3)).toBe(true);
  expect((await a.topic("default"))!.counts).toEqual({ pending: 0, locked: 0, dead: 60 });
  await Promise.all([a.close(), b.close()]);
});
