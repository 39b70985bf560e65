import { DurableObject } from "cloudflare:workers";
import type { DurableObjectState } from "../../../src/runtimes/durable-object.ts";
import { durableObjectSqliteAdapter } from "../../../src/stores/sqlite-durable-object.ts";
import { sqliteStore } from "../../../src/stores/sqlite.ts";
import { decode, encode } from "./codec.ts";

/** One SQLite store per object, over the object's own storage; POST { method, args } calls it. */
export class StoreObject extends DurableObject {
  readonly store = sqliteStore({ adapter: durableObjectSqliteAdapter((this.ctx as DurableObjectState).storage) });

  async fetch(request: Request): Promise<Response> {
    const { method, args } = decode<{ method: string; args: unknown[] }>(await request.text());
    try {
      const value = await (this.store as unknown as Record<string, (...a: unknown[]) => unknown>)[method](...args);
      return new Response(encode({ value }));
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      return new Response(encode({ error: { code, message } }));
    }
  }
}

export default {
  /** `/<name>`: the store of the object named `name`. */
  fetch(request: Request, env: { STORE: { idFromName(name: string): unknown; get(id: unknown): { fetch(r: Request): Promise<Response> } } }) {
    const name = new URL(request.url).pathname.slice(1);
    return env.STORE.get(env.STORE.idFromName(name)).fetch(request);
  },
};
