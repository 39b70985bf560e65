import { setImmediate } from "node:timers";
import { unavailable } from "../errors.ts";
import { groupCommit, groupCommitPragmas, preparedQueries, statementCache, walSyncer, type PreparedStatement, type SqliteConnection } from "./sqlite-batch.ts";
import type { SqliteAdapter } from "./sqlite.ts";

/**
 * The SQLite store's adapter on Deno, over its built-in `node:sqlite` (`DatabaseSync`), with the
 * same group commit and durability as better-sqlite3 on Node (see sqlite-node.ts). Deno needs
 * `--allow-read --allow-write` for the file.
 */

/** The part of `node:sqlite` used here (declared locally: Node 20's types have no `node:sqlite`). */
interface DatabaseSync {
  exec(sql: string): void;
  prepare(sql: string): PreparedStatement;
  readonly isTransaction: boolean;
  close(): void;
}

/** Opens `path` (created if absent) with `node:sqlite`, in WAL mode with group commit. */
export async function denoSqliteAdapter(path: string): Promise<SqliteAdapter> {
  return groupCommit(await denoSqliteConnection(path), { defer: setImmediate });
}

/** The `node:sqlite` connection {@link denoSqliteAdapter} commits in groups over. */
async function denoSqliteConnection(path: string): Promise<SqliteConnection> {
  let db: DatabaseSync | undefined;
  try {
    // A specifier held in a variable: type checking on Node 20 does not look for `node:sqlite`.
    const builtin = "node:sqlite";
    const { DatabaseSync } = (await import(builtin)) as { DatabaseSync: new (path: string, options: { timeout: number }) => DatabaseSync };
    db = new DatabaseSync(path, { timeout: 5000 });
    for (const pragma of groupCommitPragmas) db.exec(pragma);
  } catch (error) {
    db?.close();
    throw unavailable(error, `Cannot open the SQLite database ${path}`);
  }
  const open = db;
  const prepared = statementCache((sql) => open.prepare(sql));
  const wal = path === ":memory:" ? undefined : walSyncer(path);
  return {
    queries: preparedQueries(prepared),
    exec: (sql) => open.exec(sql),
    inTransaction: () => open.isTransaction,
    isBusy: (error) => /database is locked/i.test((error as Error | undefined)?.message ?? ""),
    sync: wal?.sync,
    close: () => {
      open.close();
      wal?.close();
    },
  };
}
