/// <reference path="./cloudflare-workers.ts" preserve="true" />
import { DurableObject } from "cloudflare:workers";
import { WEBHOOK_LANE } from "../engine/lanes.ts";
import { mongoStore } from "../stores/mongodb.ts";
import { durableObjectSqliteAdapter, type DurableObjectStorageLike } from "../stores/sqlite-durable-object.ts";
import { sqliteStore } from "../stores/sqlite.ts";
import type { Store } from "../types.ts";
import { tickWebhooks, type TickResult } from "../webhook/run.ts";
import { assemble, mongoOptions, type Assembly } from "./compose.ts";
import { configOf, type WorkerEnv } from "./workers-env.ts";

/** The part of a Durable Object's `ctx` pitstop uses (typed here, as in workers-env.ts). */
export interface DurableObjectState {
  storage: DurableObjectStorageLike & {
    setAlarm(scheduledTime: number): Promise<void>;
    deleteAlarm(): Promise<void>;
  };
}

/** Store methods after which the webhook lane's next due time may have moved. */
const writes = ["put", "putMany", "remove", "claim", "settle", "move"] as const;

/**
 * `PITSTOP_STORE=durable-object`: one SQLite-backed Durable Object holds the messages and runs
 * the engine, and the Worker forwards every API request to it. SSE streams are served here, so a
 * message stored by any request wakes them at once. Webhook messages go out from the object's
 * alarm, kept at the webhook lane's next due time (lock expiries included); the Worker's cron
 * calls {@link PitstopObject.tick} as a safety net. With `PITSTOP_STORE=mongodb` and
 * `PITSTOP_MONGODB_VIA_OBJECT=1` the object runs the same way over MongoDB instead.
 */
export class PitstopObject extends DurableObject<WorkerEnv, DurableObjectState> {
  readonly #assembly: Assembly;
  readonly #store: Store;
  /** The alarm this instance last set (undefined: none, or not known since the object started). */
  #armedAt: number | undefined;
  /** Ticks running: they re-arm once at their end rather than after each of their writes. */
  #ticking = 0;
  /** Alarm updates run one after another, each reading the store afresh. */
  #arming: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    // The Worker checked the configuration before forwarding anything here.
    const { config } = configOf(env);
    // With MongoDB the object keeps one driver connection for every request (workerd lets an
    // object's requests share I/O, unlike a Worker's).
    this.#store = config.store === "mongodb" ? mongoStore(mongoOptions(config)) : sqliteStore({ adapter: durableObjectSqliteAdapter(ctx.storage) });
    this.#assembly = assemble(config, this.#rearming(this.#store));
  }

  fetch(request: Request): Promise<Response> {
    return Promise.resolve(this.#assembly.app.fetch(request));
  }

  /** The alarm: delivers the due webhook messages, then sets the alarm to the next due time. */
  async alarm(): Promise<void> {
    // workerd cleared the alarm that fired.
    this.#armedAt = undefined;
    await this.tick();
  }

  /** Delivers the due webhook messages (a bounded batch) and re-arms; the cron calls it too. */
  async tick(): Promise<TickResult> {
    const { pitstop, webhook, log } = this.#assembly;
    this.#ticking++;
    try {
      const result = await tickWebhooks(pitstop, webhook);
      if (result.delivered + result.failed + result.removed > 0) log("info", "webhook tick", { ...result });
      return result;
    } finally {
      this.#ticking--;
      await this.#rearm();
    }
  }

  /** `store`, with every write followed by an alarm update before it resolves (but during a tick). */
  #rearming(store: Store): Store {
    const wrapped: Store = { ...store };
    for (const name of writes) {
      const write = store[name] as ((...args: unknown[]) => Promise<unknown>) | undefined;
      if (!write) continue;
      (wrapped as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        const result = await write(...args);
        if (this.#ticking === 0) await this.#rearm();
        return result;
      };
    }
    return wrapped;
  }

  /** Sets the alarm to the webhook lane's next due time (past times fire at once), or deletes it. */
  #rearm(): Promise<void> {
    const { storage } = this.ctx;
    const update = async () => {
      const next = await this.#store.nextDueAt(WEBHOOK_LANE, false);
      if (next === this.#armedAt) return;
      if (next === undefined) await storage.deleteAlarm();
      else await storage.setAlarm(next);
      this.#armedAt = next;
    };
    const done = this.#arming.then(update);
    this.#arming = done.catch((error: unknown) => this.#assembly.log("error", "cannot set the webhook alarm", { reason: String(error) }));
    return done;
  }
}
