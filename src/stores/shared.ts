import { invalid, PitstopError } from "../errors.ts";

/**
 * What the database stores share (no store imports another): the keyset cursor of a listing,
 * `[dueAt, id]` as JSON, opening a store ahead of its first use, and loading its optional driver.
 */

/** The cursor of a listing page whose last record is at (`dueAt`, `id`). */
export const keysetCursor = (dueAt: number, id: string): string => JSON.stringify([dueAt, id]);

/** The (dueAt, id) of a listing cursor. @throws PitstopError `invalid_request` for anything else. */
export function keysetPosition(cursor: string): [number, string] {
  let position: unknown;
  try {
    position = JSON.parse(cursor);
  } catch {
    position = undefined;
  }
  if (!Array.isArray(position) || position.length !== 2 || !Number.isSafeInteger(position[0]) || typeof position[1] !== "string") {
    throw invalid("after is not a cursor of this store", ["after"]);
  }
  return position as [number, string];
}

/** `store`, connected; on failure it is disposed and the (one-line `store_unavailable`) error thrown. */
export async function connected<S extends { connect(): Promise<void>; dispose(): Promise<void> }>(store: S): Promise<S> {
  try {
    await store.connect();
  } catch (error) {
    await store.dispose();
    throw error;
  }
  return store;
}

/**
 * A store's driver, imported on first use. The drivers are optional peer dependencies of the
 * package: when one is not installed this throws `store_unavailable` with `hint` as its message
 * (one line saying what to install); any other failure to load it is rethrown.
 */
export async function importDriver<T>(load: () => Promise<T>, hint: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_MODULE_NOT_FOUND") throw new PitstopError("store_unavailable", hint, { cause: error });
    throw error;
  }
}
