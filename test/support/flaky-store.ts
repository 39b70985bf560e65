import type { Store } from "../../src/types.ts";

/** Store methods a {@link FlakyStore} can be told to fail. */
export type StoreMethod = "put" | "putMany" | "get" | "remove" | "claim" | "settle" | "nextDueAt" | "list" | "countLanes" | "move" | "laneIds" | "policies" | "setPolicy" | "ping";

/** A store that fails the methods named in `failing` with a plain Error (as a broken driver would). */
export interface FlakyStore extends Store {
  failing: Set<StoreMethod>;
  /** Calls that failed so far. */
  failures: number;
}

/** Wraps `inner` so a test can make its methods throw, and stop throwing, at will. */
export function flakyStore(inner: Store): FlakyStore {
  const store: FlakyStore = {
    name: inner.name,
    failing: new Set(),
    failures: 0,
    put: (record) => call("put", () => inner.put(record)),
    ...(inner.putMany && { putMany: (records) => call("putMany", () => inner.putMany!(records)) }),
    get: (id) => call("get", () => inner.get(id)),
    remove: (id) => call("remove", () => inner.remove(id)),
    claim: (request) => call("claim", () => inner.claim(request)),
    settle: (ops) => call("settle", () => inner.settle(ops)),
    nextDueAt: (lane, ordered) => call("nextDueAt", () => inner.nextDueAt(lane, ordered)),
    countLanes: (now) => call("countLanes", () => inner.countLanes(now)),
    move: (id, from, to) => call("move", () => inner.move(id, from, to)),
    laneIds: (lane) => call("laneIds", () => inner.laneIds(lane)),
    policies: () => call("policies", () => inner.policies()),
    setPolicy: (topic, policy) => call("setPolicy", () => inner.setPolicy(topic, policy)),
    list: (request) => call("list", () => inner.list(request)),
    ping: () => call("ping", async () => inner.ping?.()),
    dispose: async () => inner.dispose?.(),
  };
  async function call<T>(method: StoreMethod, run: () => Promise<T>): Promise<T> {
    if (store.failing.has(method)) {
      store.failures++;
      throw new Error(`${method}: disk on fire`);
    }
    return run();
  }
  return store;
}
