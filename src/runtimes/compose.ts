import { createEngine, type Pitstop } from "../engine/index.ts";
import { createApp } from "../http/app.ts";
import { createLogger, type Logger } from "../log.ts";
import { createMetrics } from "../metrics/index.ts";
import { durationMs } from "../schedule.ts";
import { memoryStore } from "../stores/memory.ts";
import type { Store } from "../types.ts";
import { checkCallbackUrl } from "../webhook/callback-url.ts";
import type { WebhookOptions } from "../webhook/deliver.ts";
import { startWebhookLoop, type WebhookLoop } from "../webhook/run.ts";
import { ConfigError, listenAddress, readConfig, type PitstopConfig } from "./config.ts";

/**
 * The one composition root of every runtime: environment → config → store → engine → app →
 * webhook runner. Runtimes only read their environment, serve `app.fetch` and keep time.
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
 * The store the configuration names. With `connect`, a MongoDB or SQLite store is connected (or
 * its file opened) and indexed before it is returned, so a server can refuse to start on a bad URI
 * or path; a driver is imported only when its store is used.
 */
export async function openStore(config: PitstopConfig, options: { connect: boolean }): Promise<Store> {
  if (config.store === "memory") return memoryStore();
  if (config.store === "durable-object") {
    throw new ConfigError("PITSTOP_STORE=durable-object is invalid: Durable Objects run on Cloudflare Workers only (use sqlite for one machine)");
  }
  if (config.store === "sqlite") {
    const { connectSqliteStore, sqliteStore } = await import("../stores/sqlite.ts");
    return options.connect ? connectSqliteStore(config.sqlite) : sqliteStore(config.sqlite);
  }
  const { connectMongoStore, mongoStore } = await import("../stores/mongodb.ts");
  const mongo = { url: config.mongodb.uri, dbName: config.mongodb.dbName, collection: config.mongodb.collection };
  return options.connect ? connectMongoStore(mongo) : mongoStore(mongo);
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

/** Everything a long-running runtime (Node, Deno) serves, built from its environment. */
export interface PreparedServer extends Assembly {
  port: number;
  host: string;
  /** The line to print once listening, with the address the runtime reports. */
  listeningLine(address: string, port: number): string;
  /** Starts the webhook loop (and says if webhooks go out unsigned or may outlive their lock). */
  startWebhooks(): void;
  /**
   * On a signal, once: stops accepting (`stopListening`), stops webhooks (letting calls in
   * flight finish, so none is sent twice), then the engine (ending SSE streams and releasing the
   * locks their clients held, so other processes get those messages at once).
   */
  shutdown(signal: string, stopListening: () => unknown): Promise<void>;
}

/**
 * Reads the configuration and opens the store. Rejects with an `Error` whose message is the one
 * line to print (naming the bad variable, or why the store cannot be opened).
 */
export async function prepareServer(env: Record<string, string | undefined>, options: AssembleOptions = {}): Promise<PreparedServer> {
  let config: PitstopConfig;
  let address: { port: number; host: string };
  try {
    config = readConfig(env);
    address = listenAddress(env);
  } catch (error) {
    throw error instanceof ConfigError ? error : new Error(String(error));
  }
  const store = await openStore(config, { connect: true }).catch((error: unknown) => {
    throw error instanceof ConfigError ? error : new Error(`cannot open the ${config.store} store: ${(error as Error).message}`);
  });
  const assembly = assemble(config, store, options);
  const { log } = assembly;
  let webhooks: WebhookLoop | undefined;
  let stopping: Promise<void> | undefined;
  return {
    ...assembly,
    ...address,
    listeningLine: (host, port) => `pitstop listening on http://${host.includes(":") ? `[${host}]` : host}:${port} (store: ${store.name})`,
    startWebhooks() {
      if (config.webhook.signingSecret === undefined) {
        log("info", "webhooks go out unsigned (set PITSTOP_SIGNING_SECRET to sign them)");
      }
      if (config.webhook.timeoutMs >= durationMs(config.lockTime)) {
        log("warn", "PITSTOP_WEBHOOK_TIMEOUT is not shorter than PITSTOP_LOCK_TIME: a slow receiver may get the same message twice");
      }
      webhooks = startWebhookLoop(assembly.pitstop, assembly.webhook);
    },
    shutdown(signal, stopListening) {
      stopping ??= (async () => {
        log("info", `${signal}, shutting down`);
        await stopListening();
        await webhooks?.stop();
        await assembly.pitstop.close();
        log("info", "stopped");
      })();
      return stopping;
    },
  };
}
