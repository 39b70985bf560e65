import { open as openFile, type FileHandle } from "node:fs/promises";
import { PitstopError, unavailable } from "../errors.ts";
import type { SqliteAdapter, SqliteQueries, SqliteValue, WriteOptions } from "./sqlite.ts";

/**
 * Group commit for a SQLite file: the write transactions asked for during one turn of the event
 * loop are queued, then run together in one `BEGIN IMMEDIATE … COMMIT`, so one sync of the
 * write-ahead log makes all of them durable. Each runs in a SAVEPOINT (undone alone when it
 * throws), and each caller is answered only after the COMMIT: "resolved" still means "on disk".
 * The write lock is held only while a batch runs, never across turns, so other processes on the
 * file get it between batches. With `sync`, the COMMIT itself does not wait for the disk: the log
 * is synced by a background thread while the event loop serves other requests.
 */

/** The driver calls group commit needs: a synchronous connection (better-sqlite3, `node:sqlite`). */
export interface SqliteConnection {
  /** Statements to run inside transactions. */
  queries: SqliteQueries;
  /** Runs SQL without results (BEGIN, SAVEPOINT, COMMIT…). */
  exec(sql: string): void;
  /** Whether a transaction is open (SQLite rolls one back by itself on some errors). */
  inTransaction(): boolean;
  /** Whether `error` says another connection holds the write lock (SQLITE_BUSY). */
  isBusy(error: unknown): boolean;
  /**
   * For a connection that commits without syncing (`synchronous=NORMAL` in WAL mode): syncs the
   * write-ahead log off the event loop. Each batch's writers are answered after it.
   */
  sync?(): Promise<void>;
  /** Closes the connection. */
  close(): void;
}

/** Options of {@link groupCommit}. */
export interface GroupCommitOptions {
  /** Runs a batch once the current turn's transactions are queued (Node: `setImmediate`). */
  defer: (flush: () => void) => void;
  /** Most transactions in one batch; the rest wait for the next. @default 500 */
  maxBatch?: number;
  /** How long a transaction may wait for another process's write lock before it fails with `store_unavailable`. @default 5000 */
  busyTimeoutMs?: number;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Pending {
  body: (sql: SqliteQueries) => unknown;
  /** Answered only after the log's sync (else at COMMIT). */
  durable: boolean;
  since: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * A {@link SqliteAdapter} over `db` whose write transactions commit in groups (`write`). Its
 * `transaction` is for reads and set-up: with `sync`, a write made there is on disk only after
 * the next batch's sync.
 */
export function groupCommit(db: SqliteConnection, options: GroupCommitOptions): SqliteAdapter {
  const maxBatch = options.maxBatch ?? 500;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  let queue: Pending[] = [];
  let scheduled = false;
  let closed = false;

  const schedule = (pause = 0) => {
    if (scheduled) return;
    scheduled = true;
    const run = () => {
      scheduled = false;
      flush();
    };
    if (pause > 0) setTimeout(run, pause);
    else options.defer(run);
  };

  const flush = () => {
    if (queue.length === 0) return;
    const batch = queue.slice(0, maxBatch);
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      if (!db.isBusy(error)) return settleAll(batch, unavailable(error, "SQLite cannot begin a transaction"), true);
      // Another process writes: those who waited too long fail, the others come back after a random pause.
      const now = Date.now();
      const late = batch.filter((pending) => now - pending.since >= busyTimeoutMs);
      settleAll(late, new PitstopError("store_unavailable", `The SQLite database stayed locked by another process for ${busyTimeoutMs} ms`));
      if (queue.length > 0) schedule(1 + Math.random() * 10);
      return;
    }
    queue = queue.slice(batch.length);
    let outcomes: Outcome[];
    try {
      outcomes = batch.map((pending) => runOne(pending));
      if (!db.inTransaction()) {
        const cause = outcomes.findLast((outcome) => !outcome.ok && outcome.error !== undefined);
        return settleAll(batch, unavailable(cause && !cause.ok ? cause.error : undefined, "SQLite rolled the batch back"), true);
      }
      db.exec("COMMIT");
    } catch (error) {
      // COMMIT failed, or a SAVEPOINT statement did: this runs from a timer, so nothing may escape.
      return settleAll(batch, abort(error), true);
    }
    const answer = (durable: boolean) =>
      batch.forEach((pending, i) => {
        if (pending.durable !== durable) return;
        const outcome = outcomes[i];
        if (outcome.ok) pending.resolve(outcome.value);
        else pending.reject(outcome.error);
      });
    answer(false);
    const durable = batch.filter((pending) => pending.durable);
    if (db.sync && durable.length > 0) db.sync().then(() => answer(true), (error: unknown) => settleAll(durable, unavailable(error, "SQLite could not sync its log")));
    else answer(true);
    if (queue.length > 0) schedule();
  };

  /** Runs one transaction in its savepoint; a failure undoes it alone. */
  const runOne = (pending: Pending): Outcome => {
    if (!db.inTransaction()) return { ok: false, error: undefined };
    db.exec("SAVEPOINT op");
    try {
      const value = pending.body(db.queries);
      db.exec("RELEASE op");
      return { ok: true, value };
    } catch (error) {
      if (db.inTransaction()) {
        db.exec("ROLLBACK TO op");
        db.exec("RELEASE op");
      }
      return { ok: false, error };
    }
  };

  /** After a failed COMMIT: undoes whatever of the batch SQLite still holds open. */
  const abort = (error: unknown) => {
    try {
      if (db.inTransaction()) db.exec("ROLLBACK");
    } catch {
      // The connection is broken: nothing of the batch was committed, and its writers are told.
    }
    return unavailable(error, "SQLite commit failed");
  };

  /** Rejects every transaction of `batch` with `error`; `next`: then schedules the rest of the queue. */
  const settleAll = (batch: Pending[], error: unknown, next = false) => {
    const failed = new Set(batch);
    queue = queue.filter((pending) => !failed.has(pending));
    for (const pending of batch) pending.reject(error);
    if (next && queue.length > 0) schedule();
  };

  return {
    transaction(body, mode) {
      if (mode === "read") return body(db.queries);
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = body(db.queries);
        db.exec("COMMIT");
        return result;
      } catch (error) {
        if (db.inTransaction()) db.exec("ROLLBACK");
        throw error;
      }
    },
    write<T>(body: (sql: SqliteQueries) => T, options?: WriteOptions): Promise<T> {
      if (closed) return Promise.reject(new PitstopError("store_unavailable", "The SQLite database is closed."));
      return new Promise<T>((resolve, reject) => {
        queue.push({ body, durable: options?.durable ?? true, since: Date.now(), resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
    close() {
      closed = true;
      // What is queued is committed now while the lock can be had; what cannot be is rejected, never dropped silently.
      for (let before = Infinity; queue.length > 0 && queue.length < before; ) {
        before = queue.length;
        flush();
      }
      settleAll(queue, new PitstopError("store_unavailable", "The SQLite database is closed."));
      db.close();
    },
  };
}

/**
 * Syncs the write-ahead log of the database file `path` (for `synchronous=NORMAL` connections,
 * see {@link SqliteConnection.sync}). The log is opened once and kept open: SQLite's POSIX locks
 * are on the database and `-shm` files, never on the log, so this descriptor cannot drop them. A
 * failed open is tried again at the next sync.
 */
export function walSyncer(path: string): { sync(): Promise<void>; close(): void } {
  let log: Promise<FileHandle> | undefined;
  const opened = () =>
    (log ??= openFile(`${path}-wal`, "r").catch((error: unknown) => {
      log = undefined;
      throw error;
    }));
  return {
    sync: async () => (await opened()).datasync(),
    close: () => void log?.then((handle) => handle.close()).catch(() => {}),
  };
}

/**
 * The settings group commit runs with, for a file connection opened with a 5 s busy timeout (a
 * process starting beside another waits that long, once, to switch a new file to WAL):
 * - WAL, so readers run beside the one writer;
 * - `synchronous = NORMAL`: a COMMIT writes the log without syncing it; {@link walSyncer} then
 *   syncs it off the event loop before any durable writer is answered, as durable as FULL;
 * - foreign keys on (off by default in SQLite), so a deferred key a caller adds is checked at COMMIT;
 * - then only 20 ms per wait for another process's lock (see the busy retry above).
 */
export const groupCommitPragmas = ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 20"];

/** `prepare`, remembering each statement so it is compiled once per connection. */
export function statementCache<S>(prepare: (sql: string) => S): (sql: string) => S {
  const statements = new Map<string, S>();
  return (sql) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = prepare(sql)));
    return statement;
  };
}

/** A prepared statement of a synchronous driver (better-sqlite3, `node:sqlite`). */
export interface PreparedStatement {
  run(...params: SqliteValue[]): { changes: number | bigint };
  all(...params: SqliteValue[]): unknown[];
  get(...params: SqliteValue[]): unknown;
}

/** The {@link SqliteQueries} over a driver's (cached) prepared statements. */
export function preparedQueries(prepared: (sql: string) => PreparedStatement): SqliteQueries {
  return {
    run: (sql, ...params) => Number(prepared(sql).run(...params).changes),
    all: <T>(sql: string, ...params: SqliteValue[]) => prepared(sql).all(...params) as T[],
    get: <T>(sql: string, ...params: SqliteValue[]) => prepared(sql).get(...params) as T | undefined,
  };
}
