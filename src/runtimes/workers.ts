import { memoryStore } from "../stores/memory.ts";
import { tickWebhooks } from "../webhook/run.ts";
import { assemble, openMongoStore, type Assembly } from "./compose.ts";
import { ConfigError, readConfig, type PitstopConfig } from "./config.ts";

// The few Workers types used here, declared locally: @cloudflare/workers-types redeclares the
// DOM globals (Request, Response, ...) that the rest of the code base types against.

/** The `ctx` Workers pass to every handler. */
interface WorkerContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** The `controller` Workers pass to `scheduled`. */
interface WorkerScheduledController {
  readonly scheduledTime: number;
  readonly cron: string;
}

/** Vars and secrets from wrangler.toml / `wrangler secret put`; other bindings are ignored. */
type WorkerEnv = Record<string, unknown>;

/** An assembly over one opened store. */
interface Instance extends Assembly {
  /** False for the isolate's memory store, which outlives every request. */
  perRequest: boolean;
}

/**
 * The memory store lives as long as the isolate, so one engine per isolate serves every request
 * (an ack must reach the engine whose SSE stream holds the lock). Rebuilt if the vars change.
 */
let isolate: { key: string; instance: Instance } | undefined;

/** Configuration read once per `env` object (workerd hands every request of an isolate the same one). */
const configs = new WeakMap<WorkerEnv, { config: PitstopConfig; key: string }>();

function configOf(env: WorkerEnv): { config: PitstopConfig; key: string } {
  let read = configs.get(env);
  if (!read) {
    const vars: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) if (typeof value === "string") vars[key] = value;
    const config = readConfig(vars);
    configs.set(env, (read = { config, key: JSON.stringify(config) }));
  }
  return read;
}

/**
 * The isolate's memory engine, or a fresh MongoDB engine: a driver connection is bound to the
 * request (or scheduled run) that opened it, so it is never shared and is closed at the end.
 */
async function open(env: WorkerEnv): Promise<Instance> {
  const { config, key } = configOf(env);
  if (config.store === "sqlite") throw new ConfigError("PITSTOP_STORE=sqlite is invalid: the SQLite store runs on Node only (Durable Objects are not done yet)");
  if (config.store === "memory") {
    if (isolate?.key !== key) isolate = { key, instance: { ...assemble(config, memoryStore()), perRequest: false } };
    return isolate.instance;
  }
  return { ...assemble(config, await openMongoStore(config, { connect: false })), perRequest: true };
}

function configErrorResponse(error: unknown): Response {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`pitstop: ${error.message}`);
  return Response.json({ error: "invalid_config", message: error.message }, { status: 500 });
}

/** Closes a per-request engine once the response body (an SSE stream included) is done. */
function closeAfter(response: Response, instance: Instance, ctx: WorkerContext): Response {
  if (!response.body) {
    ctx.waitUntil(instance.pitstop.close());
    return response;
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  ctx.waitUntil(
    response.body
      .pipeTo(writable)
      .catch(() => {})
      .finally(() => instance.pitstop.close()),
  );
  return new Response(readable, response);
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: WorkerContext): Promise<Response> {
    let instance: Instance;
    try {
      instance = await open(env);
    } catch (error) {
      return configErrorResponse(error);
    }
    const response = await instance.app.fetch(request);
    return instance.perRequest ? closeAfter(response, instance, ctx) : response;
  },

  /** The cron trigger: delivers the due webhook messages, a bounded batch per run. */
  async scheduled(_controller: WorkerScheduledController, env: WorkerEnv, ctx: WorkerContext): Promise<void> {
    const instance = await open(env);
    try {
      const { delivered, failed, removed } = await tickWebhooks(instance.pitstop, instance.webhook);
      if (delivered + failed + removed > 0) instance.log("info", "webhook tick", { delivered, failed, removed });
    } finally {
      if (instance.perRequest) ctx.waitUntil(instance.pitstop.close());
    }
  },
};
