import { invalid } from "../errors.ts";

/**
 * What the database stores share (no store imports another): the keyset cursor of a listing,
 * `[dueAt, id]` as JSON, and opening a store ahead of its first use.
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
