/**
 * What `better-sqlite3` resolves to in the Worker bundle (wrangler.toml `[alias]`): the SQLite
 * store's Node adapter imports it lazily, and on Workers the store always runs over a Durable
 * Object's storage instead, so the native driver is never bundled. Reaching this is a bug.
 */
export default function noBetterSqlite(): never {
  throw new Error("better-sqlite3 is not available on Workers: the SQLite store runs over the Durable Object's storage there");
}
