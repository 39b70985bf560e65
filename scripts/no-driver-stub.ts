/**
 * What MongoDB's driver resolves to when `npm run bundle-size` measures the Worker without it
 * (an `[alias]` in a temporary copy of wrangler.toml). Reaching this is a bug.
 */
export default function noDriver(): never {
  throw new Error("this database driver is not in the Worker bundle");
}
