import type { Collection, Db, Filter, MongoBulkWriteError, MongoClient, UpdateFilter } from "mongodb";
import { PitstopError, unavailable } from "../errors.ts";
import type { ClaimRequest, ListRequest, PutOutcome, SettleOp, SettleResult, Store, StoredMessage, StoredPolicy } from "../types.ts";
import { connected, importDriver, keysetCursor, keysetPosition } from "./shared.ts";

/**
 * Options of the MongoDB store. The database is `db` if given, else `client.db(dbName)`, else a
 * client the store opens on `url` (or on the URI {@link mongoUri} builds from the original
 * pitstop's `host`/`port`/`hosts`/`dbname`/`user`/`pass`).
 */
export interface MongoStoreOptions {
  /** Connection string, e.g. `mongodb://db1:27017,db2:27017/?replicaSet=rs0`. @default mongoUri(options) */
  url?: string;
  /** A client (the driver's `MongoClient`) to use instead of opening one; `dispose()` leaves it open. */
  client?: MongoClientLike;
  /** A database (the driver's `Db`) to use instead of `client` and `dbName`; `dispose()` leaves its client open. */
  db?: MongoDbLike;
  /** Database name (the URL's path only names the authentication database). @default "pitstop" */
  dbName?: string;
  /** Collection holding the messages. @default "messages" */
  collection?: string;
  /** Server host, as in the original pitstop. @default "localhost" */
  host?: string;
  /** Server port. @default 27017 */
  port?: number;
  /** Seed list of `"host:port"` (a replica set); replaces `host` and `port`. */
  hosts?: string[];
  /** The original pitstop's name for `dbName`; also where `user` authenticates. */
  dbname?: string;
  /** User name; credentials are used only when `user` and `pass` are both set. */
  user?: string;
  /** Password of `user`. */
  pass?: string;
}

/**
 * What {@link MongoStoreOptions.db} must be: the driver's `Db` fits. Declared here rather than
 * imported, so pitstop's types compile where the optional `mongodb` package is not installed.
 */
export interface MongoDbLike {
  collection(name: string): unknown;
}

/** What {@link MongoStoreOptions.client} must be: the driver's `MongoClient` fits. */
export interface MongoClientLike {
  db(name: string): MongoDbLike;
}

/** A {@link Store} over MongoDB that can also be connected ahead of its first use. */
export interface MongoStore extends Store {
  /** Connects (once) and creates the index; rejects with `store_unavailable`. */
  connect(): Promise<void>;
  /** Closes the client the store opened (an injected one stays open); later calls reject. */
  dispose(): Promise<void>;
}

/** How a record is stored: its fields (epoch-millisecond times) under `_id`, `body` and `rev`. */
interface MessageDoc extends Omit<StoredMessage, "id" | "message"> {
  _id: string;
  /** The message as JSON text, so MongoDB never reads its keys as operators or paths. */
  body: string;
  /** New on every write of this document (never reused by it), so a batch claim locks only what it read. */
  rev: string;
}

type Messages = Collection<MessageDoc>;

/** The connection string for `options`: `url` as given, else one built like the original pitstop. */
export function mongoUri(options: MongoStoreOptions = {}): string {
  if (options.url) return options.url;
  const hosts = options.hosts?.length ? options.hosts.join(",") : `${options.host ?? "localhost"}:${options.port ?? 27017}`;
  if (options.user === undefined || options.pass === undefined) return `mongodb://${hosts}`;
  const auth = `${encodeURIComponent(options.user)}:${encodeURIComponent(options.pass)}`;
  return `mongodb://${auth}@${hosts}/${encodeURIComponent(options.dbname ?? options.dbName ?? "pitstop")}`;
}

/**
 * The durable store: one document per message in one collection, shared safely by any number of
 * pitstop processes. The driver is loaded and the connection opened on first use, then reused.
 */
export function mongoStore(options: MongoStoreOptions = {}): MongoStore {
  const dbName = options.dbName ?? options.dbname ?? "pitstop";
  let opened: MongoClient | undefined;
  let ready: Promise<Messages> | undefined;
  let disposed = false;

  const connect = async (): Promise<Messages> => {
    const url = options.db || options.client ? undefined : mongoUri(options);
    try {
      // The injected client or database is the driver's, typed structurally in the options.
      let db = (options.db ?? options.client?.db(dbName)) as Db | undefined;
      if (!db) {
        const { MongoClient } = await importDriver(() => import("mongodb"), "install mongodb to use PITSTOP_STORE=mongodb");
        // Fail a start against an unreachable server in 10 s rather than the driver's 30 s, unless the URL says otherwise.
        const selection = /[?&]serverSelectionTimeoutMS=/i.test(url!) ? {} : { serverSelectionTimeoutMS: 10_000 };
        opened = new MongoClient(url!, selection);
        await opened.connect();
        db = opened.db(dbName);
      }
      const messages = db.collection<MessageDoc>(options.collection ?? "messages");
      // One command for both: claims, nextDueAt and listings (due records of a lane in (dueAt, _id)
      // order, a listing page a range from a position on), and the head of an ordered lane (its
      // first record in (at, seq) order).
      await messages.createIndexes([{ key: { lane: 1, dueAt: 1, _id: 1 } }, { key: { lane: 1, at: 1, seq: 1 } }]);
      return messages;
    } catch (error) {
      const client = opened;
      opened = undefined;
      await client?.close().catch(() => {});
      throw unavailable(error, url === undefined ? "Cannot use the given MongoDB database" : `Cannot connect to MongoDB${hostsOf(url)}`);
    }
  };

  const run = async <T>(op: (messages: Messages) => Promise<T>): Promise<T> => {
    if (disposed) throw new PitstopError("store_unavailable", "The MongoDB store was disposed.");
    ready ??= connect().catch((error) => {
      ready = undefined;
      throw error;
    });
    const messages = await ready;
    try {
      return await op(messages);
    } catch (error) {
      throw error instanceof Error && error.name.startsWith("Mongo") ? unavailable(error, "MongoDB request failed") : error;
    }
  };

  return {
    name: "mongodb",

    connect: () => run(async () => {}),

    put: (record) =>
      run(async (messages) => {
        const { upsertedCount } = await messages.replaceOne({ _id: record.id }, toDoc(record), { upsert: true });
        return upsertedCount === 1 ? "created" : "replaced";
      }),

    putMany: (records) => run((messages) => putMany(messages, records)),

    get: (id) =>
      run(async (messages) => {
        const doc = await messages.findOne({ _id: id });
        return doc ? fromDoc(doc) : undefined;
      }),

    remove: (id) => run(async (messages) => (await messages.deleteOne({ _id: id })).deletedCount === 1),

    claim: (request) =>
      run((messages) => (request.ordered ? claimHead(messages, request) : request.limit === 1 ? claimOne(messages, request) : claimMany(messages, request))),

    settle: (ops) =>
      run((messages) => (ops.length === 0 ? Promise.resolve([]) : ops.length === 1 ? settleOne(messages, ops[0]) : settleMany(messages, ops))),

    nextDueAt: (lane, ordered) =>
      run(async (messages) => {
        const doc = await messages.findOne({ lane }, { sort: ordered ? headOrder : { dueAt: 1 }, projection: { dueAt: 1 } });
        return doc?.dueAt;
      }),

    countLanes: (now) =>
      run(async (messages) => {
        const groups = await messages
          .aggregate<{ _id: string; total: number; locked: number }>([
            { $group: { _id: "$lane", total: { $sum: 1 }, locked: { $sum: { $cond: [{ $gt: ["$lockedUntil", now] }, 1, 0] } } } },
          ])
          .toArray();
        return new Map(groups.map((g) => [g._id, { total: g.total, locked: g.locked }]));
      }),

    move: (id, from, to) =>
      run(async (messages) => {
        const filter = { _id: id, lane: from, lockToken: { $exists: false } };
        const update = { $set: { lane: to.lane, dueAt: to.dueAt, attempts: 0, rev: crypto.randomUUID() }, $unset: { deadAt: "" as const } };
        return (await messages.updateOne(filter, update)).matchedCount === 1;
      }),

    laneIds: (lane) =>
      run(async (messages) => (await messages.find({ lane }, { sort: { dueAt: 1 }, projection: { _id: 1 } }).toArray()).map((d) => d._id)),

    policies: () =>
      run(async (messages) => {
        const docs = await topicsOf(messages).find({}).toArray();
        return new Map(docs.map(({ _id, ...policy }) => [_id, policy as StoredPolicy]));
      }),

    setPolicy: (topic, policy) =>
      run(async (messages) => {
        if (policy === undefined) await topicsOf(messages).deleteOne({ _id: topic });
        else await topicsOf(messages).replaceOne({ _id: topic }, withoutUndefined(policy), { upsert: true });
      }),

    list: (request) =>
      run(async (messages) => {
        const docs = await messages.find(listed(request), { sort: { dueAt: 1, _id: 1 }, limit: request.limit + 1 }).toArray();
        const records = docs.slice(0, request.limit).map(fromDoc);
        const last = docs.length > request.limit ? docs[request.limit - 1] : undefined;
        return last ? { records, next: keysetCursor(last.dueAt, last._id) } : { records };
      }),

    ping: () =>
      run(async (messages) => {
        await messages.db.command({ ping: 1 });
      }),

    async dispose() {
      disposed = true;
      await ready?.catch(() => {});
      const client = opened;
      opened = undefined;
      await client?.close();
    },
  };
}

/** A store over MongoDB, connected and indexed; rejects with `store_unavailable` (one line). */
export async function connectMongoStore(options: MongoStoreOptions = {}): Promise<MongoStore> {
  return connected(mongoStore(options));
}

const due = (request: ClaimRequest): Filter<MessageDoc> => ({ lane: request.lane, dueAt: { $lte: request.now } });

const lock = (request: ClaimRequest, rev: string): UpdateFilter<MessageDoc> => ({
  $set: { lockToken: request.token, lockedUntil: request.lockedUntil, dueAt: request.lockedUntil, rev, ...(request.consumer !== undefined && { lockedBy: request.consumer }) },
  ...(request.consumer === undefined && { $unset: { lockedBy: "" } }),
  $inc: { attempts: 1 },
});

/**
 * One findAndModify. A replica set applies a write the driver retries once; when an attempt still
 * fails on the network, a read on the new `rev` tells whether it ran before this one retries.
 */
async function claimOne(messages: Messages, request: ClaimRequest): Promise<StoredMessage[]> {
  const rev = crypto.randomUUID();
  const doc = await again(
    async (retry) =>
      (retry && (await messages.findOne({ lane: request.lane, dueAt: request.lockedUntil, rev }))) ||
      messages.findOneAndUpdate(due(request), lock(request, rev), { sort: { dueAt: 1 }, returnDocument: "after" }),
  );
  return doc ? [fromDoc(doc)] : [];
}

/** The order of an ordered lane. */
const headOrder = { at: 1, seq: 1 } as const;

/**
 * The head of an ordered lane, locked only if it is due and unlocked and nothing changed it since
 * it was read (its `rev`): competing claims, in this process or another, lock it at most once,
 * and no later record is claimed while the head is locked.
 */
async function claimHead(messages: Messages, request: ClaimRequest): Promise<StoredMessage[]> {
  const head = await messages.findOne({ lane: request.lane }, { sort: headOrder });
  if (!head || head.dueAt > request.now) return [];
  const rev = crypto.randomUUID();
  const doc = await again(
    async (retry) =>
      (retry && (await messages.findOne({ _id: head._id, rev }))) ||
      messages.findOneAndUpdate({ _id: head._id, rev: head.rev }, lock(request, rev), { returnDocument: "after" }),
  );
  return doc ? [fromDoc(doc)] : [];
}

/**
 * Reads the due documents, then locks with one updateMany only those still at the `rev` they were
 * read with: each document is locked by one claim at most, and when all were locked (the usual
 * case) their new state is known without reading them again. Candidates lost to another claim
 * are replaced by a fresh read, so contention does not leave due records behind; rounds repeat
 * only while other claims make progress, and are bounded so a claim always returns.
 */
async function claimMany(messages: Messages, request: ClaimRequest): Promise<StoredMessage[]> {
  const rev = crypto.randomUUID();
  const claimed: StoredMessage[] = [];
  for (let round = 0; round < 10 && claimed.length < request.limit; round++) {
    const docs = await messages.find(due(request), { sort: { dueAt: 1 }, limit: request.limit - claimed.length }).toArray();
    if (docs.length === 0) break;
    const read = { $or: docs.map((d) => ({ _id: d._id, rev: d.rev })) };
    // Running updateMany again is safe: documents a failed attempt locked no longer carry the rev
    // they were read with, and the read below finds them by the new one.
    const { modifiedCount } = await again(() => messages.updateMany(read, lock(request, rev)));
    let won: MessageDoc[] = docs.map(({ lockedBy: _by, ...d }) => ({
      ...d,
      lockToken: request.token,
      lockedUntil: request.lockedUntil,
      dueAt: request.lockedUntil,
      attempts: d.attempts + 1,
      rev,
      ...(request.consumer !== undefined && { lockedBy: request.consumer }),
    }));
    if (modifiedCount !== docs.length) {
      const locked = new Map((await messages.find({ _id: { $in: docs.map((d) => d._id) }, rev }).toArray()).map((d) => [d._id, d]));
      won = docs.flatMap((d) => locked.get(d._id) ?? []);
    }
    claimed.push(...won.map(fromDoc));
    if (won.length === docs.length) break;
  }
  return claimed;
}

/** The documents of a listing page: the lane from the cursor's (dueAt, _id) on, in the state asked for. */
function listed(request: ListRequest): Filter<MessageDoc> {
  const filter: Filter<MessageDoc> = { lane: request.lane };
  const and: Filter<MessageDoc>[] = [];
  if (request.after !== undefined) {
    const [dueAt, id] = keysetPosition(request.after);
    // The $gte bound makes it one index range; the $or then only decides ties on dueAt.
    filter.dueAt = { $gte: dueAt };
    and.push({ $or: [{ dueAt: { $gt: dueAt } }, { _id: { $gt: id } }] });
  }
  if (request.locked === true) filter.lockedUntil = { $gt: request.now };
  if (request.locked === false) and.push({ $or: [{ lockedUntil: { $exists: false } }, { lockedUntil: { $lte: request.now } }] });
  return and.length > 0 ? { ...filter, $and: and } : filter;
}


const held = (op: SettleOp): Filter<MessageDoc> => ({ _id: op.id, lockToken: op.token, lockedUntil: { $gt: op.now } });

/**
 * Clears the lock and applies an update action; a delete action only marks the document with
 * `rev`; an extend action keeps the lock and moves its expiry.
 */
function settled(op: SettleOp, rev: string): UpdateFilter<MessageDoc> {
  const action = op.action;
  if (action.kind === "extend") return { $set: { rev, lockedUntil: action.lockedUntil, dueAt: action.lockedUntil } };
  const set: Partial<MessageDoc> = { rev };
  const unset: Partial<Record<keyof MessageDoc, "">> = { lockToken: "", lockedUntil: "", lockedBy: "" };
  if (action.kind === "update") {
    set.dueAt = action.dueAt;
    if (action.at !== undefined) set.at = action.at;
    if (action.attempts !== undefined) set.attempts = action.attempts;
    if (action.lastError === null) unset.lastError = "";
    else if (action.lastError !== undefined) set.lastError = action.lastError;
    if (action.lane !== undefined) set.lane = action.lane;
    if (action.deadAt !== undefined) set.deadAt = action.deadAt;
    if (action.failures !== undefined) set.failures = action.failures;
    if (action.lastFailure !== undefined) set.lastFailure = withoutUndefined(action.lastFailure);
  }
  return { $set: set, $unset: unset };
}

/**
 * One updateOne or deleteOne. After a network error it runs again; an update that had applied is
 * then known by its `rev`, and a document gone after a retried delete is taken as deleted by this
 * op (the only other way it goes is a concurrent `remove`).
 */
async function settleOne(messages: Messages, op: SettleOp): Promise<SettleResult[]> {
  const rev = crypto.randomUUID();
  let retried = false;
  const n = await again(async (retry) => {
    retried = retry;
    if (op.action.kind === "delete") return (await messages.deleteOne(held(op))).deletedCount;
    return (await messages.updateOne(held(op), settled(op, rev))).matchedCount;
  });
  if (n === 1) return ["ok"];
  const doc = await messages.findOne({ _id: op.id }, { projection: { rev: 1 } });
  if (!doc) return [retried && op.action.kind === "delete" ? "ok" : "not_found"];
  return [doc.rev === rev ? "ok" : "lock_lost"];
}

/**
 * Settles a batch in one update command: every op, deletes included, clears its lock (an extend
 * moves it) and stamps its own `rev`, so when some fail one read tells which (a bulk write only reports totals); then
 * one deleteMany removes the documents stamped by delete ops. Ops on the same id run in rounds,
 * in their order. A crash between the two leaves an acked record unlocked until its old lock
 * time, when it is delivered again: at least once, never lost.
 */
async function settleMany(messages: Messages, ops: SettleOp[]): Promise<SettleResult[]> {
  const results: SettleResult[] = [];
  for (const round of rounds(ops)) {
    const nonce = crypto.randomUUID();
    const revOf = (i: number) => `${nonce}.${i}`;
    // Running it again is safe: ops a failed attempt applied no longer match, and their rev says "ok".
    const { matchedCount } = await again(() =>
      messages.bulkWrite(
        round.map((i) => ({ updateOne: { filter: held(ops[i]), update: settled(ops[i], revOf(i)) } })),
        { ordered: false },
      ),
    );
    if (matchedCount === round.length) {
      for (const i of round) results[i] = "ok";
    } else {
      const ids = round.map((i) => ops[i].id);
      const revs = new Map((await messages.find({ _id: { $in: ids } }, { projection: { rev: 1 } }).toArray()).map((d) => [d._id, d.rev]));
      for (const i of round) {
        const rev = revs.get(ops[i].id);
        results[i] = rev === undefined ? "not_found" : rev === revOf(i) ? "ok" : "lock_lost";
      }
    }
    const gone = round.filter((i) => results[i] === "ok" && ops[i].action.kind === "delete");
    // Retrying is safe: it deletes exactly the documents stamped above, whether or not it ran.
    if (gone.length > 0) await again(() => messages.deleteMany({ $or: gone.map((i) => ({ _id: ops[i].id, rev: revOf(i) })) }));
  }
  return results;
}

/**
 * One unordered bulk write of upserting replaces: an upserted index was created, a write error
 * refused that record alone, any other was replaced. A failure of the whole write (network, write
 * concern) throws.
 */
async function putMany(messages: Messages, records: StoredMessage[]): Promise<PutOutcome[]> {
  if (records.length === 0) return [];
  const ops = records.map((record) => ({ replaceOne: { filter: { _id: record.id }, replacement: toDoc(record), upsert: true } }));
  let upserted: Record<number, unknown>;
  const refused = new Map<number, string>();
  try {
    upserted = (await messages.bulkWrite(ops, { ordered: false })).upsertedIds;
  } catch (error) {
    if (!(error instanceof Error) || error.name !== "MongoBulkWriteError") throw error;
    const bulk = error as MongoBulkWriteError;
    if (bulk.err !== undefined || !bulk.writeErrors) throw error;
    for (const refusal of [bulk.writeErrors].flat()) refused.set(refusal.index, refusal.errmsg ?? `error ${refusal.code}`);
    if (refused.size === 0) throw error;
    upserted = bulk.upsertedIds;
  }
  return records.map((_, i) => {
    const reason = refused.get(i);
    if (reason !== undefined) return { error: `MongoDB refused the record: ${reason}` };
    return i in upserted ? "created" : "replaced";
  });
}

/** Indexes of `ops` grouped so that each id occurs at most once per group, in order. */
function rounds(ops: SettleOp[]): number[][] {
  const seen = new Map<string, number>();
  const groups: number[][] = [];
  ops.forEach((op, i) => {
    const round = seen.get(op.id) ?? 0;
    seen.set(op.id, round + 1);
    (groups[round] ??= []).push(i);
  });
  return groups;
}

/**
 * Runs `write`, and once more (told it is the retry) after a network error, when it is unknown
 * whether the first attempt was applied. Only for writes made safe to repeat, as noted at each.
 */
async function again<T>(write: (retry: boolean) => Promise<T>): Promise<T> {
  try {
    return await write(false);
  } catch (error) {
    if (!lostOnNetwork(error)) throw error;
    return write(true);
  }
}

/**
 * A network error, also when wrapped (a bulk write reports one as its `errorResponse`), or a
 * cleared pool (the driver drops its connections after a network error; the command was not sent).
 */
function lostOnNetwork(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name.startsWith("MongoNetwork") || error.name === "MongoPoolClearedError" || lostOnNetwork((error as { errorResponse?: unknown }).errorResponse);
}

/** The collection of topic policies, beside the messages: `<collection>_topics`, one document per topic. */
const topicsOf = (messages: Messages) => messages.db.collection<StoredPolicy & { _id: string }>(`${messages.collectionName}_topics`);

/** A copy without undefined fields, which the driver would store as null. */
function withoutUndefined<T extends object>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The document for a record; lock fields are dropped, as `put` requires. */
function toDoc(record: StoredMessage): MessageDoc {
  const { id, message, lockToken, lockedUntil, lockedBy, ...fields } = record;
  const doc = { _id: id, body: JSON.stringify(message), ...fields, rev: crypto.randomUUID() };
  // The driver would store undefined as null.
  return Object.fromEntries(Object.entries(doc).filter(([, value]) => value !== undefined)) as unknown as MessageDoc;
}

function fromDoc(doc: MessageDoc): StoredMessage {
  const { _id, body, rev, ...fields } = doc;
  return { id: _id, message: JSON.parse(body), ...fields };
}

/** `" at "` and the hosts of a connection string, without credentials or options; or "". */
function hostsOf(url: string): string {
  const hosts = url.replace(/^[a-z+]+:\/\/(?:[^@/]*@)?/i, "").replace(/[/?].*$/, "");
  return hosts && ` at ${hosts}`;
}
