import type { SqliteAdapter, SqliteQueries, SqliteValue } from "./sqlite.ts";

// The few Durable Object storage types used here, declared locally (as in src/runtimes/workers.ts):
// @cloudflare/workers-types redeclares the DOM globals the rest of the code base types against.

/** What `ctx.storage.sql.exec` returns: a cursor over the rows of one statement. */
interface SqlCursor {
  toArray(): Record<string, SqliteValue>[];
}

/** The part of a SQLite-backed Durable Object's `ctx.storage` the SQLite store uses. */
export interface DurableObjectStorageLike {
  sql: { exec(query: string, ...bindings: SqliteValue[]): SqlCursor };
  /** Runs `body` as one transaction: committed when it returns, rolled back when it throws. */
  transactionSync<T>(body: () => T): T;
}

/**
 * The SQLite store's adapter over a Durable Object's own SQLite database (`ctx.storage`), for
 * `sqliteStore({ adapter })`. Calls are synchronous and the object runs one at a time, so every
 * store operation is one transaction no other request interleaves with; workerd holds the
 * object's responses until the write is durable (its output gate). Closing is a no-op: the
 * database belongs to the object.
 */
export function durableObjectSqliteAdapter(storage: DurableObjectStorageLike): SqliteAdapter {
  const rows = <T>(query: string, params: SqliteValue[]) => storage.sql.exec(query, ...params).toArray() as T[];
  const queries: SqliteQueries = {
    run(query, ...params) {
      rows(query, params);
      // The cursor's rowsWritten also counts index entries; changes() counts rows, as the store expects.
      return rows<{ n: number }>("SELECT changes() AS n", [])[0].n;
    },
    all: <T>(query: string, ...params: SqliteValue[]) => rows<T>(query, params),
    get: <T>(query: string, ...params: SqliteValue[]) => rows<T>(query, params)[0],
  };
  return {
    transaction: (body) => storage.transactionSync(() => body(queries)),
    close: () => {},
  };
}
