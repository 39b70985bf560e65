import { createServer, type AddressInfo } from "node:net";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPitstop } from "../../src/index.ts";
import { connectMongoStore, mongoStore, mongoUri, type MongoStore, type MongoStoreOptions } from "../../src/stores/mongodb.ts";
import type { SettleOp, StoredMessage } from "../../src/types.ts";
import { startMongoDouble, type MongoDouble } from "../../tools/mongo-double/index.ts";
import { testStore, type StoreFactory } from "./contract.ts";
import { lane, record, T0 } from "./records.ts";


/** Stores made by `make`, all disposed by `cleanup` (the contract suite disposes only the last). */
function factory(options: () => Promise<MongoStoreOptions>, before?: () => Promise<void>): StoreFactory {
  const made: MongoStore[] = [];
  return {
    async make() {
      await before?.();
      const store = mongoStore(await options());
      made.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(made.map((store) => store.dispose()));
    },
  };
}

let double: MongoDouble;
beforeAll(async () => {
  double = await startMongoDouble();
});
afterAll(async () => {
  await double?.close();
});

testStore(
  "mongodb (driver → test double)",
  factory(
    async () => ({ url: double.uri }),
    async () => double.reset(),
  ),
);

const realUri = process.env.MONGODB_URI;
const mongodBinary = process.env.MONGOMS_SYSTEM_BINARY;
const realMongo = Boolean(realUri || mongodBinary);
if (!realMongo) {
  console.log("[skip] real-mongod contract: set MONGODB_URI=mongodb://… or MONGOMS_SYSTEM_BINARY=/path/to/mongod to run it");
}

describe.skipIf(!realMongo)("real mongod", () => {
  const dbName = `pitstop-test-${process.pid}-${Date.now()}`;
  let server: { getUri(): string; stop(): Promise<boolean> } | undefined;
  let uri: Promise<string> | undefined;
  let collections = 0;
  const connectUri = () =>
    (uri ??= (async () => {
      if (realUri) return realUri;
      const { MongoMemoryServer } = await import("mongodb-memory-server-core");
      server = await MongoMemoryServer.create({ binary: { systemBinary: mongodBinary } });
      return server.getUri();
    })());
  const stores = factory(async () => ({ url: await connectUri(), dbName, collection: `messages-${++collections}` }));
  testStore("mongodb (driver → real mongod)", {
    make: stores.make,
    async cleanup() {
      await stores.cleanup?.();
      const client = new MongoClient(await connectUri());
      await client.db(dbName).dropDatabase();
      await client.close();
      await server?.stop();
    },
  });
});

describe("mongodb store over the double", () => {
  let client: MongoClient;
  let store: MongoStore;
  const raw = () => client.db("pitstop").collection<{ _id: string }>("messages");
  /** Commands the double received while `fn` ran, leaving out the driver's own monitoring. */
  const commandsDuring = async (fn: () => Promise<unknown>) => {
    const before = double.commandCounts();
    await fn();
    const counts: Record<string, number> = {};
    for (const [name, n] of Object.entries(double.commandCounts())) {
      const delta = n - (before[name] ?? 0);
      if (delta > 0 && !["hello", "isMaster", "ismaster", "ping", "endSessions"].includes(name)) counts[name] = delta;
    }
    return counts;
  };
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    client = new MongoClient(double.uri);
  });
  beforeEach(async () => {
    double.reset();
    await store?.dispose();
    store = mongoStore({ url: double.uri });
  });
  afterAll(async () => {
    await store?.dispose();
    await client?.close();
  });

  it("stores the body as JSON text, so operator-like keys are never interpreted", async () => {
    const message = { id: "odd", $set: { x: 1 }, "a.b": { $gt: 1 }, when: "2026-01-01T00:00:00Z" };
    await store.put(record("odd", { message }));
    const doc = await raw().findOne({ _id: "odd" });
    expect(doc).toEqual({
      _id: "odd",
      body: JSON.stringify(message),
      lane,
      topic: "default",
      at: T0,
      dueAt: T0,
      attempts: 0,
      rev: expect.any(String),
    });
    expect((await store.get("odd"))!.message).toEqual(message);
  });

  it("creates the claim indexes once, on first use, shared by concurrent first calls", async () => {
    const counts = await commandsDuring(() => Promise.all([store.get("a"), store.get("b"), store.nextDueAt(lane)]));
    expect(counts.createIndexes).toBe(1);
    const indexes = await raw().listIndexes().toArray();
    expect(indexes.map((i) => i.key)).toContainEqual({ lane: 1, dueAt: 1, _id: 1 });
    expect(indexes.map((i) => i.key)).toContainEqual({ lane: 1, at: 1, seq: 1 });
    expect((await commandsDuring(() => store.get("c"))).createIndexes).toBeUndefined();
  });

  it("claims 100 due messages in 2 commands and settles 100 in 2", async () => {
    await store.connect();
    for (let i = 0; i < 100; i++) await store.put(record(`m${i}`, { dueAt: T0 - i }));
    let claimed: StoredMessage[] = [];
    const claimCounts = await commandsDuring(async () => {
      claimed = await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 100, token: "tok" });
    });
    expect(claimed.length).toBe(100);
    expect(claimed[0]).toMatchObject({ id: "m99", attempts: 1, lockToken: "tok", lockedUntil: T0 + 60_000 });
    expect(claimCounts).toEqual({ find: 1, update: 1 });

    const ops: SettleOp[] = claimed.map((r) => ({ id: r.id, token: "tok", now: T0 + 1, action: { kind: "delete" } }));
    let results: unknown[] = [];
    const settleCounts = await commandsDuring(async () => {
      results = await store.settle(ops);
    });
    expect(results).toEqual(ops.map(() => "ok"));
    expect(settleCounts).toEqual({ update: 1, delete: 1 });
    expect(await raw().countDocuments()).toBe(0);
  });

  it("puts 500 records in one update command, and reports a record the server refused alone", async () => {
    await store.connect();
    await store.put(record("m0"));
    let outcomes: unknown[] = [];
    const counts = await commandsDuring(async () => {
      outcomes = await store.putMany!(Array.from({ length: 500 }, (_, i) => record(`m${i}`)));
    });
    expect(counts).toEqual({ update: 1 });
    expect(outcomes).toEqual(["replaced", ...Array.from({ length: 499 }, () => "created")]);

    // A unique index on the body makes the second of two equal bodies a write error of its own.
    await raw().createIndex({ body: 1 }, { unique: true });
    const same = { message: { id: "same" } };
    outcomes = await store.putMany!([record("u1", same), record("u2", same), record("u3")]);
    expect(outcomes).toEqual(["created", { error: expect.stringMatching(/^MongoDB refused the record: E11000 duplicate key/) }, "created"]);
    expect(await store.get("u2")).toBeUndefined();
  });

  it("schedules a batch of 300 through the engine in one update command", async () => {
    const pitstop = createPitstop({ store });
    await store.connect();
    let outcomes: unknown[] = [];
    const counts = await commandsDuring(async () => {
      outcomes = await pitstop.scheduleMany(Array.from({ length: 300 }, (_, i) => ({ message: { id: `s${i % 250}` } })));
    });
    expect(counts).toEqual({ update: 1 });
    expect(outcomes.filter((o) => (o as { scheduled: { replaced: boolean } }).scheduled.replaced)).toHaveLength(50);
    expect(await raw().countDocuments()).toBe(250);
  });

  it("delivers many due messages through the engine at well under 1.2 commands per message", async () => {
    const pitstop = createPitstop({ store });
    for (let i = 0; i < 200; i++) await pitstop.store({ id: `e${i}` });
    const counts = await commandsDuring(async () => {
      for (let batch = await pitstop.claim({ limit: 100 }); batch.length > 0; batch = await pitstop.claim({ limit: 100 })) {
        await Promise.all(batch.map((d) => d.ack()));
      }
    });
    console.log(`[measure] 200 messages claimed and acked with ${total(counts)} commands: ${JSON.stringify(counts)}`);
    expect(total(counts) / 200).toBeLessThan(0.1);
    expect(await raw().countDocuments()).toBe(0);
  });

  it("claims exactly once when a findAndModify or an update is lost on the network", async () => {
    await store.put(record("one"));
    double.failNext("findAndModify", 1, "network");
    const counts = await commandsDuring(async () => {
      expect((await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 1, token: "a" })).map((r) => r.id)).toEqual(["one"]);
    });
    expect(counts.findAndModify).toBe(2);
    expect(await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 1, token: "b" })).toEqual([]);
    expect(await store.get("one")).toMatchObject({ attempts: 1, lockToken: "a" });

    for (let i = 0; i < 5; i++) await store.put(record(`b${i}`));
    double.failNext("update", 1, "network");
    const batch = await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 10, token: "c" });
    expect(batch.map((r) => [r.id, r.attempts, r.lockToken]).sort()).toEqual([0, 1, 2, 3, 4].map((i) => [`b${i}`, 1, "c"]));
    expect(await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 10, token: "d" })).toEqual([]);
  });

  it("settles exactly once when an update or delete is lost on the network", async () => {
    for (let i = 0; i < 4; i++) await store.put(record(`s${i}`));
    await store.claim({ lane, now: T0, lockedUntil: T0 + 60_000, limit: 4, token: "k" });
    const op = (id: string, kind: "delete" | "update"): SettleOp => ({
      id,
      token: "k",
      now: T0 + 1,
      action: kind === "delete" ? { kind } : { kind, dueAt: T0 + 500, lastError: "x" },
    });
    double.failNext("update", 1, "network");
    expect(await store.settle([op("s0", "delete"), op("s1", "update")])).toEqual(["ok", "ok"]);
    double.failNext("delete", 1, "network");
    expect(await store.settle([op("s2", "delete")])).toEqual(["ok"]);
    double.failNext("update", 1, "network");
    expect(await store.settle([op("s3", "update")])).toEqual(["ok"]);
    expect(await raw().find().project({ _id: 1, lockToken: 1, lastError: 1 }).toArray()).toEqual([
      { _id: "s1", lastError: "x" },
      { _id: "s3", lastError: "x" },
    ]);
  });

  describe("when a write applies but its reply is lost on the network", () => {
    const claimReq = (token: string, limit: number) => ({ lane, now: T0, lockedUntil: T0 + 60_000, limit, token });
    const settleOp = (id: string, token: string, kind: "delete" | "update"): SettleOp => ({
      id,
      token,
      now: T0 + 1,
      action: kind === "delete" ? { kind } : { kind, dueAt: T0 + 500, attempts: 0, lastError: "x" },
    });
    /** Runs `fn` with the next `name` command applied but its reply dropped, and checks that this happened. */
    const replyLost = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      double.failNext(name, 1, "network-after");
      let result!: T;
      const counts = await commandsDuring(async () => {
        result = await fn();
      });
      expect(counts[name], `'${name}' sent`).toBeGreaterThanOrEqual(1);
      return result;
    };
    const claimed = (records: StoredMessage[]) => records.map((r) => [r.id, r.attempts, r.lockToken, r.lockedUntil]).sort();

    it("the double applies the write, then drops the connection without the reply", async () => {
      await raw().insertOne({ _id: "w" });
      double.failNext("delete", 1, "network-after");
      await expect(raw().deleteOne({ _id: "w" })).rejects.toMatchObject({ name: expect.stringMatching(/^MongoNetwork/) });
      expect(await raw().findOne({ _id: "w" })).toBeNull();
    });

    it("a single claim returns its record exactly once and locks nothing else", async () => {
      await store.put(record("c1", { dueAt: T0 - 1 }));
      await store.put(record("c2"));
      const first = await replyLost("findAndModify", () => store.claim(claimReq("a", 1)));
      expect(claimed(first)).toEqual([["c1", 1, "a", T0 + 60_000]]);
      expect(await store.get("c1")).toMatchObject({ attempts: 1, lockToken: "a", lockedUntil: T0 + 60_000 });
      const idle = await store.get("c2");
      expect(idle).toMatchObject({ attempts: 0, dueAt: T0 });
      expect(idle?.lockToken).toBeUndefined();
      expect(claimed(await store.claim(claimReq("b", 1)))).toEqual([["c2", 1, "b", T0 + 60_000]]);
      expect(await store.claim(claimReq("c", 1))).toEqual([]);
    });

    it("a batch claim returns every due record exactly once", async () => {
      for (let i = 0; i < 5; i++) await store.put(record(`b${i}`, { dueAt: T0 - i }));
      await store.put(record("later", { dueAt: T0 + 1 }));
      const batch = await replyLost("update", () => store.claim(claimReq("t", 10)));
      const expected = [0, 1, 2, 3, 4].map((i) => [`b${i}`, 1, "t", T0 + 60_000]);
      expect(claimed(batch)).toEqual(expected);
      expect(claimed((await Promise.all(expected.map(([id]) => store.get(id as string)))) as StoredMessage[])).toEqual(expected);
      expect(await store.get("later")).toMatchObject({ attempts: 0, dueAt: T0 + 1 });
      expect(await store.claim(claimReq("u", 10))).toEqual([]);
    });

    it("a single settle reports ok once: delete removes the record, update unlocks it", async () => {
      await store.put(record("d"));
      await store.put(record("u", { lastError: "old" }));
      await store.claim(claimReq("k", 2));

      expect(await replyLost("delete", () => store.settle([settleOp("d", "k", "delete")]))).toEqual(["ok"]);
      expect(await store.get("d")).toBeUndefined();
      expect(await store.settle([settleOp("d", "k", "delete")])).toEqual(["not_found"]);

      expect(await replyLost("update", () => store.settle([settleOp("u", "k", "update")]))).toEqual(["ok"]);
      const updated = await store.get("u");
      expect(updated).toMatchObject({ dueAt: T0 + 500, attempts: 0, lastError: "x" });
      expect(updated?.lockToken).toBeUndefined();
      expect(updated?.lockedUntil).toBeUndefined();
      expect(await store.settle([settleOp("u", "k", "delete")])).toEqual(["lock_lost"]);
      expect(await store.get("u")).toBeDefined();
    });

    it.each(["update", "delete"])("a batch settle reports every op ok once when the %s reply is lost", async (name) => {
      for (let i = 0; i < 4; i++) await store.put(record(`s${i}`));
      await store.claim(claimReq("k", 4));
      const ops = [settleOp("s0", "k", "delete"), settleOp("s1", "k", "delete"), settleOp("s2", "k", "delete"), settleOp("s3", "k", "update")];
      expect(await replyLost(name, () => store.settle(ops))).toEqual(["ok", "ok", "ok", "ok"]);
      for (const id of ["s0", "s1", "s2"]) expect(await store.get(id)).toBeUndefined();
      const updated = await store.get("s3");
      expect(updated).toMatchObject({ dueAt: T0 + 500, attempts: 0, lastError: "x" });
      expect(updated?.lockToken).toBeUndefined();
      expect(await store.settle(ops)).toEqual(["not_found", "not_found", "not_found", "lock_lost"]);
      expect(await store.claim(claimReq("z", 10))).toEqual([]);
    });
  });

  it("closes only a client it opened, and rejects calls after dispose", async () => {
    const injected = new MongoClient(double.uri);
    for (const options of [{ client: injected, dbName: "other" }, { db: injected.db("third") }]) {
      const own = mongoStore(options);
      await own.put(record("x"));
      await own.dispose();
      await own.dispose();
      await expect(own.get("x")).rejects.toMatchObject({ name: "PitstopError", code: "store_unavailable" });
    }
    expect(await injected.db("other").collection("messages").countDocuments()).toBe(1);
    expect(await injected.db("third").collection("messages").countDocuments()).toBe(1);
    await injected.close();

    await store.put(record("y"));
    await store.dispose();
    await store.dispose();
    await expect(store.claim({ lane, now: T0, lockedUntil: T0 + 1, limit: 1, token: "t" })).rejects.toMatchObject({
      code: "store_unavailable",
      message: "The MongoDB store was disposed.",
    });
  });

  it("fails to connect with one clear line when the server is unreachable or the URL is bad", async () => {
    const port = await closedPort();
    const started = Date.now();
    const error = await connectMongoStore({ url: `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=500` }).catch((e) => e);
    // Well under the store's own 10 s default: the URL's serverSelectionTimeoutMS was honoured.
    expect(Date.now() - started).toBeLessThan(8000);
    expect(error).toMatchObject({ name: "PitstopError", code: "store_unavailable" });
    expect(error.message).toMatch(new RegExp(`^Cannot connect to MongoDB at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(error.message).not.toContain("\n");
    expect(error.cause).toBeInstanceOf(Error);

    const bad = await connectMongoStore({ url: "mongodb://u:secret@" }).catch((e) => e);
    expect(bad).toMatchObject({ code: "store_unavailable" });
    expect(bad.message).toBe("Cannot connect to MongoDB: Protocol and host list are required in the uri");
    expect(bad.message).not.toContain("secret");
  });

  it("maps the original pitstop's host, port, hosts, dbname, user and pass onto a URI", () => {
    expect(mongoUri()).toBe("mongodb://localhost:27017");
    expect(mongoUri({ host: "db", port: 27018 })).toBe("mongodb://db:27018");
    expect(mongoUri({ hosts: ["a:1", "b:2"], user: "u" })).toBe("mongodb://a:1,b:2");
    expect(mongoUri({ hosts: ["a:1", "b:2"], dbname: "ps", user: "u@x", pass: "p:w/" })).toBe("mongodb://u%40x:p%3Aw%2F@a:1,b:2/ps");
    expect(mongoUri({ user: "u", pass: "p" })).toBe("mongodb://u:p@localhost:27017/pitstop");
    expect(mongoUri({ url: "mongodb+srv://cluster.example.com/", host: "ignored" })).toBe("mongodb+srv://cluster.example.com/");
  });
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
