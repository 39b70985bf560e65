import { connect } from "node:net";
import { deserialize, serialize } from "bson";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MongoBulkWriteError, MongoClient, MongoServerError, type Collection, type Db, type Document } from "mongodb";
import { startMongoDouble, type MongoDouble } from "./index.ts";

let double: MongoDouble;
let client: MongoClient;
let db: Db;
// Test documents mostly use strings and numbers as _id (the driver generates ObjectIds for the rest).
type Item = { _id?: string | number; [key: string]: any };
let items: Collection<Item>;

beforeAll(async () => {
  double = await startMongoDouble();
  client = new MongoClient(double.uri, { serverSelectionTimeoutMS: 2_000 });
  await client.connect();
  db = client.db("pitstop_test");
  items = db.collection<Item>("items");
});

afterAll(async () => {
  await client?.close();
  await double?.close();
});

beforeEach(() => double.reset());

const countOf = (name: string) => double.commandCounts()[name] ?? 0;

/** Sends one OP_MSG with a body and kind-1 document sequences; resolves with the reply body. */
function rawOpMsg(body: Document, sequences: [string, Document[]][]): Promise<Document> {
  const sections = [Buffer.from([0]), Buffer.from(serialize(body))];
  for (const [identifier, docs] of sequences) {
    const payload = Buffer.concat([Buffer.from(`${identifier}\0`), ...docs.map((doc) => Buffer.from(serialize(doc)))]);
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + payload.length);
    sections.push(Buffer.from([1]), size, payload);
  }
  const header = Buffer.alloc(20);
  const message = Buffer.concat([header, ...sections]);
  message.writeInt32LE(message.length, 0);
  message.writeInt32LE(7, 4);
  message.writeInt32LE(2013, 12);
  const { port } = new URL(double.uri);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(message));
    let received = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= received.readInt32LE(0)) {
        socket.end();
        expect(received.readInt32LE(8)).toBe(7);
        resolve(deserialize(received.subarray(21)));
      }
    });
    socket.on("error", reject);
  });
}

describe("mongo-double through the real driver", () => {
  it("inserts documents and rejects a duplicate _id with E11000", async () => {
    const one = await items.insertOne({ _id: "a", n: 1 });
    expect(one.insertedId).toBe("a");
    const many = await items.insertMany([{ n: 2 }, { n: 3 }]);
    expect(many.insertedCount).toBe(2);

    const duplicate = await items.insertOne({ _id: "a", n: 9 }).catch((e: unknown) => e);
    expect(duplicate).toBeInstanceOf(MongoServerError);
    expect((duplicate as MongoServerError).code).toBe(11000);
    expect((duplicate as MongoServerError).message).toMatch(/E11000 duplicate key error collection: pitstop_test.items index: _id_/);

    const ordered = await items.insertMany([{ _id: "b" }, { _id: "a" }, { _id: "c" }]).catch((e: unknown) => e);
    expect(ordered).toBeInstanceOf(MongoBulkWriteError);
    expect((ordered as MongoBulkWriteError).code).toBe(11000);
    expect((ordered as MongoBulkWriteError).result.insertedCount).toBe(1);

    const unordered = await items
      .insertMany([{ _id: "a" }, { _id: "d" }], { ordered: false })
      .catch((e: unknown) => e);
    expect((unordered as MongoBulkWriteError).result.insertedCount).toBe(1);
    expect(await items.countDocuments()).toBe(5);
  });

  it("generates an ObjectId _id and returns _id first", async () => {
    await items.insertOne({ n: 1 });
    const [doc] = await items.find().toArray();
    expect(Object.keys(doc)).toEqual(["_id", "n"]);
    expect(doc._id.constructor.name).toBe("ObjectId");
  });

  it("finds with filter, sort, skip, limit and projection", async () => {
    await items.insertMany([5, 3, 9, 1, 7].map((n) => ({ _id: `k${n}`, n, even: n % 2 === 0 })));
    const docs = await items.find({ n: { $gte: 3 } }, { sort: { n: -1 }, skip: 1, limit: 2, projection: { even: 0 } }).toArray();
    expect(docs).toEqual([
      { _id: "k7", n: 7 },
      { _id: "k5", n: 5 },
    ]);
    expect(await items.findOne({}, { sort: { n: 1 }, projection: { n: 1, _id: 0 } })).toEqual({ n: 1 });
  });

  it("sorts in BSON order: missing = null < numbers < strings < dates, arrays by their extreme element", async () => {
    await items.insertMany([
      { _id: 1, v: "b" },
      { _id: 2, v: 10 },
      { _id: 3 },
      { _id: 4, v: new Date(0) },
      { _id: 5, v: null },
      { _id: 6, v: 2.5 },
      { _id: 7, v: "B" },
      { _id: 8, v: [0, 100] },
    ]);
    const ascending = await items.find({}, { sort: { v: 1, _id: 1 } }).toArray();
    expect(ascending.map((d) => d._id)).toEqual([3, 5, 8, 6, 2, 7, 1, 4]);
    const descending = await items.find({}, { sort: { v: -1, _id: 1 } }).toArray();
    expect(descending.map((d) => d._id)).toEqual([4, 1, 7, 8, 2, 6, 3, 5]);
  });

  it("a sort with a limit keeps ties in natural order, also after updates and re-inserts", async () => {
    await items.insertMany([9, 1, 5, 2, 7, 3, 8, 4, 6].map((n) => ({ _id: `k${n}`, lane: n % 3 === 0 ? "x" : "l", dueAt: n % 4 })));
    // Natural order is insertion order; updating a document keeps its place, re-inserting moves it last.
    await items.updateOne({ _id: "k9" }, { $set: { dueAt: 1 } });
    await items.deleteOne({ _id: "k1" });
    await items.insertOne({ _id: "k1", lane: "l", dueAt: 1 });
    const all = await items.find({ lane: "l" }, { sort: { dueAt: 1 } }).toArray();
    expect(all.map((d) => d._id)).toEqual(["k8", "k4", "k5", "k1", "k2", "k7"]);
    for (const limit of [1, 2, 3, 4, 5]) {
      const some = await items.find({ lane: "l" }, { sort: { dueAt: 1 }, limit }).toArray();
      expect(some).toEqual(all.slice(0, limit));
    }
    expect(await items.find({ lane: "l", dueAt: { $lte: 1 } }, { sort: { dueAt: 1 }, skip: 1, limit: 2 }).toArray()).toEqual(all.slice(1, 3));
    expect((await items.find({}, { sort: { dueAt: -1 }, limit: 3 }).toArray()).map((d) => d._id)).toEqual(["k7", "k3", "k2"]);
    expect(await items.findOne({ lane: "l" }, { sort: { dueAt: 1 }, projection: { dueAt: 1 } })).toEqual({ _id: "k8", dueAt: 0 });
    const claimed = await items.findOneAndUpdate({ lane: "l", dueAt: { $lte: 1 } }, { $set: { dueAt: 50 } }, { sort: { dueAt: 1 } });
    expect(claimed?._id).toBe("k8");
    // A filter no document passes, with a limit.
    expect(await items.find({ lane: "l", dueAt: { $gt: 50 } }, { sort: { dueAt: 1 }, limit: 2 }).toArray()).toEqual([]);
  });

  it("filters that pin _id ($in, $eq, $or and $and clauses) still apply their other conditions", async () => {
    await items.insertMany([1, 2, 3, 4, 5, 6].map((n) => ({ _id: n, rev: `r${n % 2}`, n })));
    // Documents come back in natural order whatever the order of the ids asked for.
    expect((await items.find({ _id: { $in: [5, 1, 3, 99, 1] } }).toArray()).map((d) => d._id)).toEqual([1, 3, 5]);
    expect((await items.find({ _id: { $in: [6, 2, 4] }, rev: "r0", n: { $gt: 2 } }).toArray()).map((d) => d._id)).toEqual([4, 6]);
    expect((await items.find({ _id: { $eq: 2 }, rev: "r1" }).toArray()).map((d) => d._id)).toEqual([]);
    expect((await items.find({ $and: [{ _id: { $in: [1, 2, 3] } }, { rev: "r1" }] }).toArray()).map((d) => d._id)).toEqual([1, 3]);
    // A $or clause that does not pin _id makes the whole filter a scan.
    expect((await items.find({ $or: [{ _id: 6 }, { n: { $lt: 2 } }] }).toArray()).map((d) => d._id)).toEqual([1, 6]);

    // The batch-claim shape: lock only the documents still at the rev they were read with.
    const read = { $or: [{ _id: 4, rev: "r0" }, { _id: 2, rev: "stale" }, { _id: 3, rev: "r1" }, { _id: 42, rev: "r0" }] };
    expect(await items.updateMany(read, { $set: { rev: "locked" }, $inc: { n: 10 } })).toMatchObject({ matchedCount: 2, modifiedCount: 2 });
    expect(await items.find({ rev: "locked" }).toArray()).toEqual([
      { _id: 3, rev: "locked", n: 13 },
      { _id: 4, rev: "locked", n: 14 },
    ]);
    expect(await items.deleteMany({ $or: [{ _id: 4, rev: "locked" }, { _id: 5, rev: "locked" }] })).toMatchObject({ deletedCount: 1 });
    expect((await items.find().toArray()).map((d) => d._id)).toEqual([1, 2, 3, 5, 6]);
    expect(await items.countDocuments({ _id: { $in: [1, 2, 3, 4] }, rev: { $ne: "locked" } })).toBe(2);
  });

  it("positional $ updates still see the filter", async () => {
    await items.insertOne({ _id: 1, grades: [80, 90, 95] });
    await items.updateMany({ _id: { $in: [1] }, grades: 90 }, { $set: { "grades.$": 91 } });
    expect(await items.findOne({ _id: 1 })).toEqual({ _id: 1, grades: [80, 91, 95] });
  });

  it("iterates a cursor over more than one batch with getMore", async () => {
    await items.insertMany(Array.from({ length: 250 }, (_, i) => ({ i })));
    const before = countOf("getMore");
    let seen = 0;
    for await (const doc of items.find({}, { sort: { i: 1 } })) {
      expect(doc.i).toBe(seen);
      seen++;
    }
    expect(seen).toBe(250);
    expect(countOf("getMore") - before).toBeGreaterThanOrEqual(1);

    const small = await items.find({}, { batchSize: 10, limit: 35 }).toArray();
    expect(small).toHaveLength(35);
  });

  it("updateOne applies $set and $inc, and upserts from the filter's equality fields", async () => {
    const tagged = db.collection<{ _id: string; n: number; tags: string[]; s?: string }>("items");
    await tagged.insertOne({ _id: "u", n: 1, tags: ["a"] });
    const updated = await tagged.updateOne({ _id: "u" }, { $set: { s: "x" }, $inc: { n: 2 }, $push: { tags: "b" } });
    expect(updated).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    expect(await items.findOne({ _id: "u" })).toEqual({ _id: "u", n: 3, tags: ["a", "b"], s: "x" });

    const same = await items.updateOne({ _id: "u" }, { $set: { s: "x" } });
    expect(same).toMatchObject({ matchedCount: 1, modifiedCount: 0 });

    const upserted = await items.updateOne(
      { key: "k", lane: { $eq: "l" }, n: { $gt: 5 } },
      { $set: { v: 1 }, $setOnInsert: { created: true } },
      { upsert: true },
    );
    expect(upserted).toMatchObject({ matchedCount: 0, modifiedCount: 0, upsertedCount: 1 });
    expect(await items.findOne({ _id: upserted.upsertedId! })).toEqual({
      _id: upserted.upsertedId,
      key: "k",
      lane: "l",
      v: 1,
      created: true,
    });

    const again = await items.updateOne({ key: "k" }, { $set: { v: 2 }, $setOnInsert: { created: false } }, { upsert: true });
    expect(again).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    expect(await items.findOne({ key: "k" }, { projection: { _id: 0 } })).toEqual({ key: "k", lane: "l", v: 2, created: true });
  });

  it("rejects $inc on a non-numeric field and changing _id", async () => {
    await items.insertOne({ _id: "t", s: "text" });
    await expect(items.updateOne({ _id: "t" }, { $inc: { s: 1 } })).rejects.toMatchObject({ code: 14 });
    await expect(items.updateOne({ _id: "t" }, { $set: { _id: "other" } })).rejects.toMatchObject({ code: 66 });
  });

  it("replaces documents and applies pipeline updates", async () => {
    await items.insertOne({ _id: "r", a: 1, b: 2 });
    await items.replaceOne({ _id: "r" }, { c: 3 });
    expect(await items.findOne({ _id: "r" })).toEqual({ _id: "r", c: 3 });

    const result = await items.updateOne({ _id: "r" }, [{ $set: { d: { $add: ["$c", 1] } } }, { $unset: "c" }]);
    expect(result.modifiedCount).toBe(1);
    expect(await items.findOne({ _id: "r" })).toEqual({ _id: "r", d: 4 });
  });

  it("updateMany with a $or filter reports matched and modified counts", async () => {
    await items.insertMany([
      { _id: 1, kind: "a", done: false },
      { _id: 2, kind: "b", done: false },
      { _id: 3, kind: "c", done: true },
      { _id: 4, kind: "d", done: false },
    ]);
    const result = await items.updateMany({ $or: [{ kind: "a" }, { kind: "b" }, { _id: 3 }] }, { $set: { done: true } });
    expect(result).toMatchObject({ matchedCount: 3, modifiedCount: 2 });
    expect(await items.countDocuments({ done: true })).toBe(3);
  });

  it("findOneAndUpdate picks by sort, returns the updated document, and null when nothing matches", async () => {
    await items.insertMany([
      { _id: "x", lane: "l", dueAt: 30 },
      { _id: "y", lane: "l", dueAt: 10 },
      { _id: "z", lane: "l", dueAt: 20 },
    ]);
    const claimed = await items.findOneAndUpdate(
      { lane: "l", dueAt: { $lte: 25 } },
      { $set: { lockToken: "t1", dueAt: 100 }, $inc: { attempts: 1 } },
      { sort: { dueAt: 1 }, returnDocument: "after" },
    );
    expect(claimed).toEqual({ _id: "y", lane: "l", dueAt: 100, lockToken: "t1", attempts: 1 });

    const before = await items.findOneAndUpdate({ _id: "z" }, { $set: { dueAt: 5 } });
    expect(before).toEqual({ _id: "z", lane: "l", dueAt: 20 });

    expect(await items.findOneAndUpdate({ lane: "none" }, { $set: { x: 1 } }, { returnDocument: "after" })).toBeNull();

    const upserted = await items.findOneAndUpdate({ _id: "w" }, { $set: { lane: "m" } }, { upsert: true, returnDocument: "after" });
    expect(upserted).toEqual({ _id: "w", lane: "m" });

    const withMeta = await items.findOneAndUpdate({ _id: "x" }, { $set: { dueAt: 1 } }, { includeResultMetadata: true });
    expect(withMeta.lastErrorObject).toMatchObject({ n: 1, updatedExisting: true });
  });

  it("findOneAndDelete, deleteOne and deleteMany", async () => {
    await items.insertMany([1, 2, 3, 4, 5].map((n) => ({ _id: n, n, group: n % 2 })));
    expect(await items.findOneAndDelete({ group: 1 }, { sort: { n: -1 } })).toEqual({ _id: 5, n: 5, group: 1 });
    expect(await items.findOneAndDelete({ n: 99 })).toBeNull();
    expect(await items.deleteOne({ group: 1 })).toMatchObject({ deletedCount: 1 });
    expect(await items.deleteMany({ group: 0 })).toMatchObject({ deletedCount: 2 });
    expect(await items.find().toArray()).toEqual([{ _id: 3, n: 3, group: 1 }]);
  });

  it("bulkWrite with mixed unordered operations", async () => {
    await items.insertMany([1, 2, 3].map((n) => ({ _id: n, n })));
    const result = await items.bulkWrite(
      [
        { updateOne: { filter: { _id: 1 }, update: { $inc: { n: 10 } } } },
        { deleteOne: { filter: { _id: 2 } } },
        { updateOne: { filter: { _id: 42 }, update: { $set: { n: 0 } } } },
        { deleteOne: { filter: { _id: 43 } } },
        { updateOne: { filter: { _id: 3 }, update: { $set: { n: 3 } } } },
      ],
      { ordered: false },
    );
    expect(result.matchedCount).toBe(2);
    expect(result.modifiedCount).toBe(1);
    expect(result.deletedCount).toBe(1);
    expect(await items.find({}, { sort: { _id: 1 } }).toArray()).toEqual([
      { _id: 1, n: 11 },
      { _id: 3, n: 3 },
    ]);
  });

  it("createIndex is idempotent and unique indexes reject duplicates", async () => {
    expect(await items.createIndex({ key: 1 }, { unique: true })).toBe("key_1");
    expect(await items.createIndex({ key: 1 }, { unique: true })).toBe("key_1");
    await expect(items.createIndex({ key: 1 }, { unique: false })).rejects.toMatchObject({ code: 85 });
    expect((await items.indexes()).map((i) => i.name)).toEqual(["_id_", "key_1"]);

    await items.insertOne({ key: "a" });
    const dup = await items.insertOne({ key: "a" }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(MongoServerError);
    expect(dup).toMatchObject({ code: 11000, keyValue: { key: "a" } });

    await items.insertOne({ key: "b" });
    await expect(items.updateOne({ key: "b" }, { $set: { key: "a" } })).rejects.toMatchObject({ code: 11000 });
    await expect(items.findOneAndUpdate({ key: "b" }, { $set: { key: "a" } })).rejects.toMatchObject({ code: 11000 });
    await items.updateOne({ key: "b" }, { $set: { key: "c" } });
    await items.insertOne({ key: "b" });
    expect(await items.countDocuments()).toBe(3);

    await expect(items.createIndex({ other: 1 }, { unique: true })).rejects.toMatchObject({ code: 11000 });
    await items.createIndex({ other: 1 }, { unique: true, sparse: true });
  });

  it("countDocuments and estimatedDocumentCount", async () => {
    await items.insertMany(Array.from({ length: 12 }, (_, i) => ({ i, lane: i % 3 === 0 ? "a" : "b" })));
    expect(await items.countDocuments({ lane: "a" })).toBe(4);
    expect(await items.countDocuments({ lane: "b" }, { limit: 5 })).toBe(5);
    expect(await items.countDocuments({ lane: "none" })).toBe(0);
    expect(await items.estimatedDocumentCount()).toBe(12);
    const grouped = await items.aggregate([{ $group: { _id: "$lane", n: { $sum: 1 } } }, { $sort: { _id: 1 } }]).toArray();
    expect(grouped).toEqual([
      { _id: "a", n: 4 },
      { _id: "b", n: 8 },
    ]);
  });

  it("rejects unknown commands with 59 and unknown options with 2", async () => {
    await expect(db.command({ foo: 1 })).rejects.toMatchObject({ code: 59, codeName: "CommandNotFound" });
    await expect(db.command({ find: "items", bogus: true })).rejects.toMatchObject({ code: 2, message: expect.stringMatching(/bogus/) });
    await expect(items.find({}, { collation: { locale: "en" } }).toArray()).rejects.toMatchObject({ code: 2 });
    await expect(items.aggregate([{ $lookup: { from: "x", as: "y" } }]).toArray()).rejects.toMatchObject({ code: 2 });
  });

  it("failNext network: the driver retries the read once and it succeeds", async () => {
    await items.insertOne({ _id: "n" });
    const before = countOf("find");
    double.failNext("find", 1, "network");
    expect(await items.findOne({ _id: "n" })).toEqual({ _id: "n" });
    expect(countOf("find") - before).toBe(2);
  });

  it("failNext with a code replies with that server error", async () => {
    double.failNext("insert", 1, { code: 112, message: "boom" });
    await expect(items.insertOne({ a: 1 })).rejects.toMatchObject({ code: 112, message: "boom" });
    await items.insertOne({ a: 1 });
    expect(await items.countDocuments()).toBe(1);
  });

  it("w:0 writes get no reply and still apply", async () => {
    await items.insertOne({ _id: "w0" }, { writeConcern: { w: 0 } });
    expect(await items.findOne({ _id: "w0" })).toEqual({ _id: "w0" });
  });

  it("merges OP_MSG kind-1 document sequences into the command", async () => {
    const reply = await rawOpMsg({ insert: "items", $db: "pitstop_test" }, [["documents", [{ _id: 1 }, { _id: 2 }, { _id: 1 }]]]);
    expect(reply).toMatchObject({ ok: 1, n: 2, writeErrors: [{ index: 2, code: 11000 }] });
    expect(await items.countDocuments()).toBe(2);
  });

  it("reset drops all data", async () => {
    await items.insertOne({ a: 1 });
    double.reset();
    expect(await items.countDocuments()).toBe(0);
    expect(await db.listCollections().toArray()).toEqual([]);
  });
});
