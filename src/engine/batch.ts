import type { PutOutcome, Store, StoredMessage } from "../types.ts";

/**
 * Stores records as if put one after another: for an id given more than once only the last record
 * is written, and the earlier ones report what sequential puts would have (the first `created`
 * when the id was new, the others `replaced`). One `putMany` when the store has it, else one `put`
 * per distinct id (concurrently; any failure throws, as a failed `putMany` does).
 */
export async function putInOrder(store: Store, records: StoredMessage[]): Promise<PutOutcome[]> {
  if (records.length === 0) return [];
  const lastOf = new Map<string, number>();
  records.forEach((record, i) => lastOf.set(record.id, i));
  const kept = [...lastOf.values()].sort((a, b) => a - b);
  const written = store.putMany
    ? await store.putMany(kept.map((i) => records[i]))
    : await Promise.all(kept.map((i) => store.put(records[i])));
  const outcomeOf = new Map(kept.map((i, k) => [records[i].id, written[k]]));
  const seen = new Set<string>();
  return records.map((record) => {
    const outcome = outcomeOf.get(record.id)!;
    const first = !seen.has(record.id);
    seen.add(record.id);
    return typeof outcome === "object" || first ? outcome : "replaced";
  });
}
