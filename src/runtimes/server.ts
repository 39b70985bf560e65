import { durationMs } from "../schedule.ts";
import { memoryStore } from "../stores/memory.ts";
import type { SqliteAdapter } from "../stores/sqlite.ts";
import type { Store } from "../types.ts";
import { startWebhookLoop, type WebhookLoop } from "../webhook/run.ts";
import { assemble, openMongoStore, type AssembleOptions, type Assembly } from "./compose.ts";
import { ConfigError, listenAddress, readConfig, type PitstopConfig } from "./config.ts";

/**
 * What the long-running runtimes (Node, Deno) share: the store the environment names, the engine
 * and app over it, the webhook loop and the shutdown order. Apart from compose.ts so the Worker
 * (which never opens SQLite) does not bundle the SQLite store and its driver import.
 */

/**
 * How a runtime opens a SQLite file (Node: better-sqlite3, Deno: `node:sqlite`), handed in by the
 * runtime so each bundle holds only its own driver.
 */
export type SqliteOpener = (path: string) => Promise<SqliteAdapter>;

/** What a long-running runtime brings to {@link prepareServer}. */
export interface ServerOptions extends AssembleOptions {
  /** Opens `PITSTOP_SQLITE_PATH` for `PITSTOP_STORE=sqlite`; without it that store is refused. */
  sqlite?: SqliteOpener;
}

/**
 * The store the configuration names. A MongoDB or SQLite store is connected (or its file opened)
 * and indexed before it is returned, so a server can refuse to start on a bad URI or path; a
 * driver is imported only when its store is used.
 */
async function openStore(config: PitstopConfig, sqlite: SqliteOpener | undefined): Promise<Store> {
  if (config.store === "memory") return memoryStore();
  if (config.store === "durable-object") {
    throw new ConfigError("PITSTOP_STORE=durable-object is invalid: Durable Objects run on Cloudflare Workers only (use sqlite for one machine)");
  }
  if (config.store === "sqlite") {
    if (!sqlite) throw new Error("this runtime has no SQLite driver");
    const { connectSqliteStore } = await import("../stores/sqlite.ts");
    return connectSqliteStore({ adapter: () => sqlite(config.sqlite.path) });
  }
  return openMongoStore(config, { connect: true });
}

/** The URL of a server listening on `host` (an IPv6 address is bracketed) and `port`. */
export const httpUrl = (host: string, port: number): string => `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

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
export async function prepareServer(env: Record<string, string | undefined>, options: ServerOptions = {}): Promise<PreparedServer> {
  let config: PitstopConfig;
  let address: { port: number; host: string };
  try {
    config = readConfig(env);
    address = listenAddress(env);
  } catch (error) {
    throw error instanceof ConfigError ? error : new Error(String(error));
  }
  const store = await openStore(config, options.sqlite).catch((error: unknown) => {
    throw error instanceof ConfigError ? error : new Error(`cannot open the ${config.store} store: ${(error as Error).message}`);
  });
  const assembly = assemble(config, store, options);
  const { log } = assembly;
  let webhooks: WebhookLoop | undefined;
  let stopping: Promise<void> | undefined;
  return {
    ...assembly,
    ...address,
    listeningLine: (host, port) => `pitstop listening on ${httpUrl(host, port)} (store: ${store.name})`,
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
