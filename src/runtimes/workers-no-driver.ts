/**
 * What a database driver left out of the Worker bundle resolves to (wrangler.toml `[alias]`):
 * better-sqlite3, which the SQLite store imports lazily on Node only (on Workers it runs over the
 * Durable Object's storage), and MongoDB's driver when `npm run bundle-size` measures without it.
 * Reaching this is a bug.
 */
export default function noDriver(): never {
  throw new Error("this database driver is not in the Worker bundle");
}
