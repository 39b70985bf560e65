import type BetterSqlite3 from "better-sqlite3";
import { PitstopError, unavailable } from "../errors.ts";
import { connected, importDriver } from "./shared.ts";
import { groupCommit, groupCommitPragmas, preparedQueries, statementCache, walSyncer, type SqliteConnection } from "./sqlite-batch.ts";
import { sqliteStore, type SqliteAdapter, type SqliteStore } from "./sqlite.ts";

/**
 * The SQLite store on Node: a file opened through better-sqlite3, kept apart from sqlite.ts so the
 * native driver never enters a bundle that only needs the store (the Worker's).
 */

/** Options of the SQLite store on a file. */
export interface SqliteFileOptions {
  /** Database file (created if absent; `":memory:"` for a private in-memory one). @default "./pitstop.db" */
  path?: string;
}

/**
 * The durable store for one machine, with no server to run: messages in one SQLite file, opened
 * on first use by {@link betterSqliteAdapter} and closed by `dispose()`. When a write resolves,
 * its transaction is on disk.
 */
export function sqliteFileStore(options: SqliteFileOptions = {}): SqliteStore {
  return sqliteStore({ adapter: () => betterSqliteAdapter(options.path ?? "./pitstop.db") });
}

/** A store on a SQLite file, opened with its tables; rejects with `store_unavailable` (one line). */
export async function connectSqliteFileStore(options: SqliteFileOptions = {}): Promise<SqliteStore> {
  return connected(sqliteFileStore(options));
}

/** Options of {@link betterSqliteAdapter}. */
export interface BetterSqliteOptions {
  /** Most write transactions in one COMMIT. @default 500 */
  maxBatch?: number;
  /** How long a write waits for another process's write lock before failing with `store_unavailable`. @default 5000 */
  busyTimeoutMs?: number;
}

/**
 * Opens `path` with better-sqlite3 (imported on this first use), with group commit (sqlite-batch.ts):
 * the write transactions of one event-loop turn share one COMMIT, and each caller is answered
 * after it. WAL lets readers run beside the one writer; `synchronous=FULL` syncs the WAL at every
 * commit, so a stored or settled message survives a power loss once its request is answered
 * (NORMAL would only survive a process crash). While another process holds the write lock, a
 * BEGIN waits 20 ms at most (SQLite's busy handler blocks the event loop), then the batch is
 * tried again after a random pause, up to `busyTimeoutMs`.
 */
export async function betterSqliteAdapter(path: string, options: BetterSqliteOptions = {}): Promise<SqliteAdapter> {
  return groupCommit(await betterSqliteConnection(path), { defer: setImmediate, ...options });
}

/** The better-sqlite3 connection {@link betterSqliteAdapter} commits in groups over. */
export async function betterSqliteConnection(path: string): Promise<SqliteConnection> {
  const Database: typeof BetterSqlite3 = (await importDriver(() => import("better-sqlite3"), "install better-sqlite3@12 to use PITSTOP_STORE=sqlite")).default;
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(path, { timeout: 5000 });
    for (const pragma of groupCommitPragmas) db.exec(pragma);
  } catch (error) {
    db?.close();
    throw unavailable(error, `Cannot open the SQLite database ${path}`);
  }
  const open = db;
  const prepared = statementCache((sql) => open.prepare(sql));
  const wal = open.memory ? undefined : walSyncer(open.name);
  return {
    queries: preparedQueries(prepared),
    exec: (sql) => void prepared(sql).run(),
    inTransaction: () => open.inTransaction,
    isBusy: (error) => (error as { code?: unknown } | undefined)?.code === "SQLITE_BUSY",
    sync: wal?.sync,
    close: () => {
      open.close();
      wal?.close();
    },
  };
}
