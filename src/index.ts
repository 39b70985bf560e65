import { createEngine, type EngineOptions, type Pitstop } from "./engine/index.ts";
import { memoryStore } from "./stores/memory.ts";
import type { Store } from "./types.ts";
import { checkCallbackUrl } from "./webhook/callback-url.ts";

/** Options of {@link createPitstop}: the engine's, with defaults for the store and the callback policy. */
export interface PitstopOptions extends Omit<EngineOptions, "store" | "checkCallback"> {
  /** Where messages live. @default memoryStore() */
  store?: Store;
  /**
   * Checks (and may normalize) a callback URL when a message is stored; throws to refuse it.
   * @default checkCallbackUrl: loopback, private, link-local and metadata hosts are refused
   */
  checkCallback?: (url: string) => string;
}

/**
 * A pitstop engine: `store(msg, at)`, `store(msg, start, end, interval)`, `remove(id)`,
 * `listen()`, as in the original Clojure pitstop. With no options it keeps messages in memory.
 */
export function createPitstop(options: PitstopOptions = {}): Pitstop {
  return createEngine({ ...options, store: options.store ?? memoryStore(), checkCallback: options.checkCallback ?? ((url) => checkCallbackUrl(url)) });
}

export { createEngine } from "./engine/index.ts";
export type {
  AckOutcome,
  ConsumeOptions,
  Delivery,
  EngineOptions,
  LifecycleDetail,
  Listener,
  ListenOptions,
  MessageView,
  NackOptions,
  Pitstop,
  PitstopEventMap,
  PitstopEventName,
  ScheduleInput,
  ScheduleOutcome,
  Scheduled,
} from "./engine/index.ts";
export { systemClock, type Clock } from "./engine/index.ts";
export { createApp, type AppOptions } from "./http/app.ts";
export { tickWebhooks, startWebhookLoop, type TickOptions, type TickResult, type WebhookLoop } from "./webhook/run.ts";
export { webhookDeliverer, type WebhookOptions, type WebhookOutcome } from "./webhook/deliver.ts";
export { signWebhook, verifyWebhook, decodeSigningSecret, type HeadersInput } from "./webhook/sign.ts";
export { checkCallbackUrl, callbackChecker, isPrivateHost, type CallbackPolicy } from "./webhook/callback-url.ts";
export { memoryStore, type MemoryStoreOptions } from "./stores/memory.ts";
export { mongoStore, connectMongoStore, mongoUri, type MongoStore, type MongoStoreOptions, type MongoClientLike, type MongoDbLike } from "./stores/mongodb.ts";
export { sqliteStore, connectSqliteStore, type SqliteStore, type SqliteStoreOptions, type SqliteAdapter, type SqliteQueries, type SqliteValue } from "./stores/sqlite.ts";
export { sqliteFileStore, connectSqliteFileStore, betterSqliteAdapter, type SqliteFileOptions } from "./stores/sqlite-node.ts";
export { durableObjectSqliteAdapter, type DurableObjectStorageLike } from "./stores/sqlite-durable-object.ts";
export { PitstopError, errorCodes, type ErrorCode, type ErrorIssue } from "./errors.ts";
export type * from "./types.ts";
