import { createEngine, type Pitstop } from "../engine/index.ts";
import { createApp } from "../http/app.ts";
import { createLogger, type Logger } from "../log.ts";
import { createMetrics } from "../metrics/index.ts";
import type { MongoStoreOptions } from "../stores/mongodb.ts";
import type { Store } from "../types.ts";
import { checkCallbackUrl } from "../webhook/callback-url.ts";
import type { WebhookOptions } from "../webhook/deliver.ts";
import type { PitstopConfig } from "./config.ts";

/**
 * The one composition root of every runtime: config → store → engine → app → webhook options
 * (server.ts adds the environment, the SQLite store and the webhook loop for Node and Deno).
 * Runtimes only read their environment, serve `app.fetch` and keep time.
 */

/** An engine with its app and webhook options over one opened store. */
export interface Assembly {
  config: PitstopConfig;
  pitstop: Pitstop;
  app: ReturnType<typeof createApp>;
  /** What `tickWebhooks` and `startWebhookLoop` are given. */
  webhook: WebhookOptions;
  /** The logger engine, app and webhooks write to. */
  log: Logger;
}

/** How the runtime would have its logs when `PITSTOP_LOG_FORMAT` is not set. */
export interface AssembleOptions {
  /** Whether stdout is a terminal: `pretty` lines then, else `json`. @default false */
  tty?: boolean;
}

/**
 * The MongoDB store of the configuration; with `connect`, connected and indexed before it is
 * returned. The driver is imported only when this is called.
 */
export async function openMongoStore(config: PitstopConfig, options: { connect: boolean }): Promise<Store> {
  const { connectMongoStore, mongoStore } = await import("../stores/mongodb.ts");
  const mongo = mongoOptions(config);
  return options.connect ? connectMongoStore(mongo) : mongoStore(mongo);
}

/** The MongoDB store options of the configuration. */
export function mongoOptions({ mongodb }: PitstopConfig): MongoStoreOptions {
  return { url: mongodb.uri, dbName: mongodb.dbName, collection: mongodb.collection };
}

/** Builds the engine, the app and the webhook options over `store`, as `config` says. */
export function assemble(config: PitstopConfig, store: Store, options: AssembleOptions = {}): Assembly {
  const log = createLogger({ format: config.log.format ?? (options.tty ? "pretty" : "json"), level: config.log.level });
  const policy = { allowPrivate: config.allowPrivateCallbacks };
  // The configured default callback is trusted configuration, exempt from the private-host policy.
  const checkCallback = (url: string) => (url === config.callbackUrl ? url : checkCallbackUrl(url, policy));
  const pitstop = createEngine({ store, lockTime: config.lockTime, loopTime: config.loopTime, defaultCallback: config.callbackUrl, checkCallback, log });
  const metrics = createMetrics(pitstop);
  pitstop.addEventListener("dead", ({ detail }) => log("warn", `message "${detail.id}" is dead after attempt ${detail.attempt}`, { topic: detail.topic }));
  pitstop.addEventListener("store-error", ({ detail }) => log("error", `store ${detail.method} failed`, { reason: detail.reason }));
  const app = createApp(pitstop, {
    token: config.token,
    maxBodyBytes: config.maxBodyBytes,
    heartbeatMs: config.heartbeatMs,
    corsOrigins: config.corsOrigins,
    log,
    metrics,
    metricsToken: config.metricsToken,
    logRequests: config.log.level === "debug",
  });
  return { config, pitstop, app, webhook: { ...config.webhook, checkCallback, log, onCall: metrics.webhookCall }, log };
}
