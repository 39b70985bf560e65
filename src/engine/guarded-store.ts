import { PitstopError } from "../errors.ts";
import type { Store } from "../types.ts";

/**
 * The store as the engine uses it: anything it throws that is not already a `PitstopError` (a
 * driver error, a bug) becomes `store_unavailable`, so callers see one code, HTTP answers 503
 * and nothing is reported as done that was not.
 */
export function guardStore(store: Store, onError: (method: string, reason: string) => void = () => {}): Store {
  const guard = <A extends unknown[], R>(method: string, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await call(...args);
      } catch (error) {
        if (error instanceof PitstopError) throw error;
        const reason = error instanceof Error ? error.message : String(error);
        onError(method, reason);
        throw new PitstopError("store_unavailable", `The ${store.name} store failed (${method}): ${reason}`, { cause: error });
      }
    };
  return {
    name: store.name,
    put: guard("put", (record) => store.put(record)),
    ...(store.putMany && { putMany: guard("putMany", (records) => store.putMany!(records)) }),
    get: guard("get", (id) => store.get(id)),
    remove: guard("remove", (id) => store.remove(id)),
    claim: guard("claim", (request) => store.claim(request)),
    settle: guard("settle", (ops) => store.settle(ops)),
    nextDueAt: guard("nextDueAt", (lane, ordered) => store.nextDueAt(lane, ordered)),
    countLanes: guard("countLanes", (now) => store.countLanes(now)),
    move: guard("move", (id, from, to) => store.move(id, from, to)),
    laneIds: guard("laneIds", (lane) => store.laneIds(lane)),
    policies: guard("policies", () => store.policies()),
    setPolicy: guard("setPolicy", (topic, policy) => store.setPolicy(topic, policy)),
    list: guard("list", (request) => store.list(request)),
    ping: guard("ping", async () => store.ping?.()),
    dispose: guard("dispose", async () => store.dispose?.()),
  };
}
