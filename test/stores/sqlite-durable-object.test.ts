import { afterAll, beforeAll } from "vitest";
import { PitstopError, type ErrorCode } from "../../src/errors.ts";
import type { Store } from "../../src/types.ts";
import { decode, encode } from "../support/do-store/codec.ts";
import { bundleWorker, startWorkerd, type WorkerBundle, type WorkerdServer } from "../support/workerd.ts";
import { testStore } from "./contract.ts";

// The SQLite store over a Durable Object's own SQLite storage, inside workerd: each store of the
// suite is a fresh object of test/support/do-store/worker.ts, and its methods are called over HTTP.
const config = "test/support/do-store/wrangler.toml";
let bundle: WorkerBundle;
let server: WorkerdServer;
beforeAll(async () => {
  bundle = await bundleWorker({ config });
  server = await startWorkerd(bundle, {}, { config });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await bundle?.remove();
});

const methods = ["put", "putMany", "get", "remove", "claim", "settle", "nextDueAt", "countLanes", "move", "laneIds", "policies", "setPolicy", "list", "ping"] as const;
let objects = 0;

/** A Store whose every call runs in the object named `name`. */
function objectStore(name: string): Store {
  let disposed = false;
  const call = async (method: string, args: unknown[]) => {
    if (disposed) throw new PitstopError("store_unavailable", "The store was disposed.");
    const response = await fetch(`${server.url}/${name}`, { method: "POST", body: encode({ method, args }) });
    const reply = decode<{ value?: unknown; error?: { code: ErrorCode; message: string } }>(await response.text());
    if (reply.error) throw new PitstopError(reply.error.code, reply.error.message);
    return reply.value;
  };
  const store: Record<string, unknown> = { name: "sqlite", dispose: async () => void (disposed = true) };
  for (const method of methods) store[method] = (...args: unknown[]) => call(method, args);
  return store as unknown as Store;
}

testStore("sqlite (Durable Object storage in workerd)", { make: async () => objectStore(`store-${objects++}`) });
