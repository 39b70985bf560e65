import { memoryStore } from "../stores/memory.ts";
import { tickWebhooks } from "../webhook/run.ts";
import { assemble, openMongoStore, type Assembly } from "./compose.ts";
import { ConfigError } from "./config.ts";
import type { PitstopObject } from "./durable-object.ts";
import { configErrorResponse, configOf, type WorkerEnv } from "./workers-env.ts";

export { PitstopObject } from "./durable-object.ts";

/** The `ctx` Workers pass to every handler. */
interface WorkerContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** The `controller` Workers pass to `scheduled`. */
interface WorkerScheduledController {
  readonly scheduledTime: number;
  readonly cron: string;
}

/** The Durable Object namespace binding of `PitstopObject` (`[[durable_objects.bindings]]`). */
interface PitstopNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response>; tick(): ReturnType<PitstopObject["tick"]> };
}

/** Whether requests go to the Durable Object: its own store, or MongoDB through it. */
function viaObject(env: WorkerEnv): boolean {
  const { config } = configOf(env);
  return config.store === "durable-object" || (config.store === "mongodb" && config.mongodb.viaObject);
}

/** The one object that holds every message with `PITSTOP_STORE=durable-object` (or MongoDB's one connection). */
function pitstopObject(env: WorkerEnv) {
  const namespace = env.PITSTOP as PitstopNamespace | undefined;
  if (typeof namespace?.idFromName !== "function") {
    throw new ConfigError(`PITSTOP_STORE=${configOf(env).config.store} here needs the PITSTOP Durable Object binding of class PitstopObject (see wrangler.toml)`);
  }
  return namespace.get(namespace.idFromName("pitstop"));
}

/**
 * Forwards a request to the object. An object that cannot answer (overloaded, reset by a
 * deploy, storage unavailable) throws here: a 503 `store_unavailable` says so, as a store would.
 */
async function forward(request: Request, env: WorkerEnv): Promise<Response> {
  const object = pitstopObject(env);
  try {
    return await object.fetch(request);
  } catch (error) {
    const message = `The Durable Object could not answer: ${error instanceof Error ? error.message : String(error)}`;
    return Response.json({ error: "store_unavailable", message }, { status: 503 });
  }
}

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

/**
 * The isolate's memory engine, or a fresh MongoDB engine: a driver connection is bound to the
 * request (or scheduled run) that opened it, so it is never shared and is closed at the end.
 */
async function open(env: WorkerEnv): Promise<Instance> {
  const { config, key } = configOf(env);
  if (config.store === "sqlite") throw new ConfigError("PITSTOP_STORE=sqlite is invalid: the SQLite file store runs on Node and Deno only (on Workers use durable-object)");
  if (config.store === "memory") {
    if (isolate?.key !== key) isolate = { key, instance: { ...assemble(config, memoryStore()), perRequest: false } };
    return isolate.instance;
  }
  return { ...assemble(config, await openMongoStore(config, { connect: false })), perRequest: true };
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
      if (viaObject(env)) return await forward(request, env);
      instance = await open(env);
    } catch (error) {
      return configErrorResponse(error);
    }
    const response = await instance.app.fetch(request);
    return instance.perRequest ? closeAfter(response, instance, ctx) : response;
  },

  /**
   * The cron trigger: delivers the due webhook messages, a bounded batch per run. With the
   * Durable Object store the object's alarm delivers them on time; this is its safety net.
   */
  async scheduled(_controller: WorkerScheduledController, env: WorkerEnv, ctx: WorkerContext): Promise<void> {
    if (viaObject(env)) {
      await pitstopObject(env).tick();
      return;
    }
    const instance = await open(env);
    try {
      const { delivered, failed, removed } = await tickWebhooks(instance.pitstop, instance.webhook);
      if (delivered + failed + removed > 0) instance.log("info", "webhook tick", { delivered, failed, removed });
    } finally {
      if (instance.perRequest) ctx.waitUntil(instance.pitstop.close());
    }
  },
};
