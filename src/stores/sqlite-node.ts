import type BetterSqlite3 from "better-sqlite3";
import { PitstopError, unavailable } from "../errors.ts";
import { connected } from "./shared.ts";
import { sqliteStore, type SqliteAdapter, type SqliteQueries, type SqliteStore, type SqliteValue } from "./sqlite.ts";

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

/**
 * Opens `path` with better-sqlite3 (imported on this first use). WAL lets readers run beside the
 * one writer; `synchronous=FULL` syncs the WAL at every commit, so a stored or settled message
 * survives a power loss once its request is answered (NORMAL would only survive a process crash).
 * Writers from other processes wait up to 5 s for the lock.
 */
export async function betterSqliteAdapter(path: string): Promise<SqliteAdapter> {
  let Database: typeof BetterSqlite3;
  try {
    Database = (await import("better-sqlite3")).default;
  } catch (error) {
    throw new PitstopError("store_unavailable", "The SQLite store needs the better-sqlite3 package: npm install better-sqlite3@12", { cause: error });
  }
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(path, { timeout: 5000 });
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
  } catch (error) {
    db?.close();
    throw unavailable(error, `Cannot open the SQLite database ${path}`);
  }
  const open = db;
  const statements = new Map<string, BetterSqlite3.Statement>();
  const prepared = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = open.prepare(sql)));
    return statement;
  };
  const queries: SqliteQueries = {
    run: (sql, ...params) => prepared(sql).run(...params).changes,
    all: <T>(sql: string, ...params: SqliteValue[]) => prepared(sql).all(...params) as T[],
    get: <T>(sql: string, ...params: SqliteValue[]) => prepared(sql).get(...params) as T | undefined,
  };
  return {
    transaction: (body) => open.transaction(() => body(queries)).immediate(),
    close: () => open.close(),
  };
}
