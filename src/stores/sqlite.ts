import { PitstopError, unavailable } from "../errors.ts";
import type { ListRequest, SettleOp, SettleResult, Store, StoredMessage, StoredPolicy } from "../types.ts";
import { connected, keysetCursor, keysetPosition } from "./shared.ts";

/** Options of one {@link SqliteAdapter.write}. */
export interface WriteOptions {
  /**
   * `false`: answered once its batch has committed, without waiting for the log's sync. For
   * claims: a lock lost to a power cut only means the message is delivered again, which
   * at-least-once allows, and its delivery is not held up by the disk. @default true
   */
  durable?: boolean;
}

/** A value SQLite binds or returns. */
export type SqliteValue = string | number | bigint | null;

/** Statements run inside a transaction of a {@link SqliteAdapter}. Every call is synchronous. */
export interface SqliteQueries {
  /** Runs a statement that returns no rows; returns how many rows it changed. */
  run(sql: string, ...params: SqliteValue[]): number;
  /** Every row of a query, as objects keyed by column name. */
  all<T>(sql: string, ...params: SqliteValue[]): T[];
  /** The first row of a query, or undefined. */
  get<T>(sql: string, ...params: SqliteValue[]): T | undefined;
}

/**
 * The narrow SQLite surface the store runs on, so one store serves better-sqlite3 on Node
 * (`betterSqliteAdapter`, in sqlite-node.ts) and a Durable Object's `ctx.storage.sql` (whose
 * `transactionSync` and `exec` fit it). Every call is synchronous.
 */
export interface SqliteAdapter {
  /**
   * Runs `body` as one write transaction (BEGIN IMMEDIATE: no other writer between its first read
   * and its commit) and returns its result; when `body` throws, rolls back and rethrows. With
   * `"read"`, `body` only reads, and may run outside a write transaction.
   */
  transaction<T>(body: (sql: SqliteQueries) => T, mode?: "read"): T;
  /**
   * Group commit, where the adapter offers it: runs `body` as a write transaction, possibly in one
   * COMMIT with others (each undone alone when it throws), and resolves with its result once that
   * COMMIT is durable; when the COMMIT fails, every transaction in it rejects with
   * `store_unavailable` and none is kept. The store then writes only through it, and uses
   * `transaction` only to read.
   */
  write?<T>(body: (sql: SqliteQueries) => T, options?: WriteOptions): Promise<T>;
  /** Closes the database (committing what is pending); the adapter is not used afterwards. */
  close(): void;
}

/** Options of the SQLite store. */
export interface SqliteStoreOptions {
  /**
   * The database: an opened adapter (e.g. over a Durable Object's storage), which `dispose()`
   * leaves open, or a function opening one on first use, whose adapter `dispose()` closes. An
   * opener should reject with a one-line `store_unavailable` naming what it could not open.
   */
  adapter: SqliteAdapter | (() => Promise<SqliteAdapter>);
}

/** A {@link Store} over SQLite that can also be opened ahead of its first use. */
export interface SqliteStore extends Store {
  /** Opens the database (once) and creates the tables and indexes; rejects with `store_unavailable`. */
  connect(): Promise<void>;
  /** Closes the database the store opened (an injected adapter stays open); later calls reject. Safe twice. */
  dispose(): Promise<void>;
}

/**
 * The layout: a record is kept whole as JSON in `record` (so every field and the message body
 * round-trip exactly), beside copies of the fields claims and listings filter and sort on, always
 * written together. (lane, due_at, id) serves claims, nextDueAt, laneIds and listing pages;
 * (lane, at, seq, id) finds the head of an ordered lane.
 */
const schema = [
  `CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    lane TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    lock_token TEXT,
    locked_until INTEGER,
    record TEXT NOT NULL
  )`,
  "CREATE INDEX IF NOT EXISTS messages_due ON messages (lane, due_at, id)",
  "CREATE INDEX IF NOT EXISTS messages_order ON messages (lane, at, seq, id)",
  "CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, policy TEXT NOT NULL)",
];

/**
 * The Store contract over a SQLite database. Each operation is one transaction, so a claim is
 * atomic across every store and process on the database. On Node, `sqliteFileStore` (in
 * sqlite-node.ts) opens a file through better-sqlite3.
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  const owned = typeof options.adapter === "function";
  let ready: Promise<SqliteAdapter> | undefined;
  let disposed = false;

  const open = async (): Promise<SqliteAdapter> => {
    let db: SqliteAdapter | undefined;
    try {
      db = typeof options.adapter === "function" ? await options.adapter() : options.adapter;
      const create = (sql: SqliteQueries) => schema.forEach((statement) => sql.run(statement));
      await (db.write ? db.write(create) : db.transaction(create));
      return db;
    } catch (error) {
      if (owned) db?.close();
      throw unavailable(error, "Cannot set up the SQLite database");
    }
  };

  /** `read`: outside the write batch; `claim`: a write answered before the log's sync (see {@link WriteOptions}). */
  const run = async <T>(body: (sql: SqliteQueries) => T, mode?: "read" | "claim"): Promise<T> => {
    if (disposed) throw new PitstopError("store_unavailable", "The SQLite store was disposed.");
    ready ??= open().catch((error) => {
      ready = undefined;
      throw error;
    });
    const db = await ready;
    if (disposed) throw new PitstopError("store_unavailable", "The SQLite store was disposed.");
    try {
      if (mode === "read" || !db.write) return db.transaction(body, mode === "read" ? "read" : undefined);
      return await db.write(body, { durable: mode !== "claim" });
    } catch (error) {
      throw error instanceof PitstopError ? error : unavailable(error, "SQLite request failed");
    }
  };

  return {
    name: "sqlite",

    connect: () => run(() => {}, "read"),

    put: (record) => run((sql) => putOne(sql, record)),

    putMany: (records) => run((sql) => records.map((record) => putOne(sql, record))),

    get: (id) => run((sql) => read(sql, id), "read"),

    remove: (id) => run((sql) => sql.run("DELETE FROM messages WHERE id = ?", id) === 1),

    claim: (request) =>
      run((sql) => {
        const rows = request.ordered
          ? sql.all<Row>("SELECT record FROM messages WHERE lane = ? ORDER BY at, seq, id LIMIT 1", request.lane)
          : sql.all<Row>("SELECT record FROM messages WHERE lane = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?", request.lane, request.now, request.limit);
        const due = rows.map(fromRow).filter((record) => record.dueAt <= request.now);
        return due.map((record) => {
          const { lockedBy: _by, ...rest } = record;
          const claimed: StoredMessage = {
            ...rest,
            lockToken: request.token,
            lockedUntil: request.lockedUntil,
            dueAt: request.lockedUntil,
            attempts: record.attempts + 1,
            ...(request.consumer !== undefined && { lockedBy: request.consumer }),
          };
          update(sql, claimed);
          return claimed;
        });
      }, "claim"),

    settle: (ops) => run((sql) => ops.map((op) => settleOne(sql, op))),

    nextDueAt: (lane, ordered) =>
      run(
        (sql) =>
          sql.get<{ due_at: number }>(`SELECT due_at FROM messages WHERE lane = ? ORDER BY ${ordered ? "at, seq, id" : "due_at, id"} LIMIT 1`, lane)
            ?.due_at,
        "read",
      ),

    countLanes: (now) =>
      run((sql) => {
        const rows = sql.all<{ lane: string; total: number; locked: number }>(
          "SELECT lane, count(*) AS total, count(CASE WHEN locked_until > ? THEN 1 END) AS locked FROM messages GROUP BY lane",
          now,
        );
        return new Map(rows.map((row) => [row.lane, { total: row.total, locked: row.locked }]));
      }, "read"),

    move: (id, from, to) =>
      run((sql) => {
        const record = read(sql, id);
        if (!record || record.lane !== from || record.lockToken !== undefined) return false;
        const { deadAt: _dead, ...rest } = record;
        update(sql, { ...rest, lane: to.lane, dueAt: to.dueAt, attempts: 0 });
        return true;
      }),

    laneIds: (lane) => run((sql) => sql.all<{ id: string }>("SELECT id FROM messages WHERE lane = ? ORDER BY due_at, id", lane).map((row) => row.id), "read"),

    policies: () =>
      run((sql) => {
        const rows = sql.all<{ topic: string; policy: string }>("SELECT topic, policy FROM topics");
        return new Map(rows.map((row) => [row.topic, JSON.parse(row.policy) as StoredPolicy]));
      }, "read"),

    setPolicy: (topic, policy) =>
      run((sql) => {
        if (policy === undefined) sql.run("DELETE FROM topics WHERE topic = ?", topic);
        else sql.run("INSERT INTO topics (topic, policy) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET policy = excluded.policy", topic, JSON.stringify(policy));
      }),

    list: (request) => run((sql) => listPage(sql, request), "read"),

    ping: () => run((sql) => void sql.get("SELECT 1"), "read"),

    async dispose() {
      if (disposed) return;
      disposed = true;
      const db = await ready?.catch(() => undefined);
      if (owned) db?.close();
    },
  };
}

/** A store over SQLite, opened with its tables; rejects with `store_unavailable` (one line). */
export async function connectSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  return connected(sqliteStore(options));
}

interface Row {
  record: string;
}

const fromRow = (row: Row): StoredMessage => JSON.parse(row.record) as StoredMessage;

const read = (sql: SqliteQueries, id: string): StoredMessage | undefined => {
  const row = sql.get<Row>("SELECT record FROM messages WHERE id = ?", id);
  return row && fromRow(row);
};

/** The indexed columns of a record, then the record itself. */
const columns = (record: StoredMessage): SqliteValue[] => [
  record.lane,
  record.dueAt,
  record.at,
  record.seq ?? 0,
  record.attempts,
  record.lockToken ?? null,
  record.lockedUntil ?? null,
  JSON.stringify(record),
];

/** Inserts or replaces a record, without its lock. */
function putOne(sql: SqliteQueries, record: StoredMessage): "created" | "replaced" {
  const existed = sql.run("DELETE FROM messages WHERE id = ?", record.id) === 1;
  const { lockToken: _token, lockedUntil: _until, lockedBy: _by, ...fresh } = record;
  insert(sql, fresh);
  return existed ? "replaced" : "created";
}

function insert(sql: SqliteQueries, record: StoredMessage): void {
  sql.run(
    "INSERT INTO messages (id, lane, due_at, at, seq, attempts, lock_token, locked_until, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    record.id,
    ...columns(record),
  );
}

function update(sql: SqliteQueries, record: StoredMessage): void {
  sql.run(
    "UPDATE messages SET lane = ?, due_at = ?, at = ?, seq = ?, attempts = ?, lock_token = ?, locked_until = ?, record = ? WHERE id = ?",
    ...columns(record),
    record.id,
  );
}

function settleOne(sql: SqliteQueries, op: SettleOp): SettleResult {
  const record = read(sql, op.id);
  if (!record) return "not_found";
  if (record.lockToken !== op.token || record.lockedUntil === undefined || record.lockedUntil <= op.now) return "lock_lost";
  const action = op.action;
  if (action.kind === "delete") {
    sql.run("DELETE FROM messages WHERE id = ?", op.id);
    return "ok";
  }
  if (action.kind === "extend") {
    update(sql, { ...record, lockedUntil: action.lockedUntil, dueAt: action.lockedUntil });
    return "ok";
  }
  const { lockToken: _token, lockedUntil: _until, lockedBy: _by, ...next } = record;
  next.dueAt = action.dueAt;
  if (action.at !== undefined) next.at = action.at;
  if (action.attempts !== undefined) next.attempts = action.attempts;
  if (action.lastError === null) delete next.lastError;
  else if (action.lastError !== undefined) next.lastError = action.lastError;
  if (action.lane !== undefined) next.lane = action.lane;
  if (action.deadAt !== undefined) next.deadAt = action.deadAt;
  if (action.failures !== undefined) next.failures = action.failures;
  if (action.lastFailure !== undefined) next.lastFailure = action.lastFailure;
  update(sql, next);
  return "ok";
}

/** One page from the cursor's (due_at, id) on, one index range; `limit + 1` rows tell whether more follow. */
function listPage(sql: SqliteQueries, request: ListRequest) {
  const where = ["lane = ?"];
  const params: SqliteValue[] = [request.lane];
  if (request.after !== undefined) {
    where.push("(due_at, id) > (?, ?)");
    params.push(...keysetPosition(request.after));
  }
  if (request.locked === true) where.push("locked_until > ?");
  if (request.locked === false) where.push("(locked_until IS NULL OR locked_until <= ?)");
  if (request.locked !== undefined) params.push(request.now);
  const rows = sql.all<Row>(`SELECT record FROM messages WHERE ${where.join(" AND ")} ORDER BY due_at, id LIMIT ?`, ...params, request.limit + 1);
  const records = rows.slice(0, request.limit).map(fromRow);
  const last = rows.length > request.limit ? records[request.limit - 1] : undefined;
  return last ? { records, next: keysetCursor(last.dueAt, last.id) } : { records };
}

