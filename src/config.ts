import type { AppOptions } from "./app.ts";
import { callbackChecker, checkCallbackUrl } from "./callback-url.ts";
import { PitstopError } from "./errors.ts";
import type { PitstopOptions } from "./pitstop.ts";
import { durationMs, parseDuration } from "./schedule.ts";
import { decodeSigningSecret, type WebhookOptions } from "./webhook.ts";

/** Configuration shared by every runtime, read from environment-like variables. */
export interface PitstopConfig {
  /** `PITSTOP_STORE`: `memory` or `mongodb`. @default "memory" */
  store: "memory" | "mongodb";
  /** `PITSTOP_LOCK_TIME`, an ISO-8601 duration or ms. @default "PT15M" */
  lockTime: string;
  /** `PITSTOP_LOOP_TIME`, an ISO-8601 duration or ms. @default "PT1M" */
  loopTime: string;
  /** `PITSTOP_TOKEN`: bearer token required by every route but `/health`. */
  token?: string;
  /** `PITSTOP_MAX_BODY`: largest request body in bytes. @default 1048576 */
  maxBodyBytes: number;
  /**
   * `PITSTOP_HEARTBEAT`: SSE heartbeat interval in ms. On Workers it also bounds how long a gone
   * SSE client holds its messages (workerd notices it only when it next writes). @default 15000
   */
  heartbeatMs: number;
  /** `MONGODB_URI`, `PITSTOP_MONGODB_DB`, `PITSTOP_MONGODB_COLLECTION`. */
  mongodb: { uri?: string; dbName: string; collection: string };
  /** `PITSTOP_CALLBACK_URL`: webhook URL of messages stored without a callback (trusted, may be private). */
  callbackUrl?: string;
  /** `PITSTOP_ALLOW_PRIVATE_CALLBACKS=1`: accept callbacks to loopback, private and metadata hosts. @default false */
  allowPrivateCallbacks: boolean;
  /**
   * Options for `tickWebhooks` / `startWebhookLoop`: `PITSTOP_SIGNING_SECRET` (`whsec_…`; without
   * it webhooks go out unsigned), `PITSTOP_WEBHOOK_TIMEOUT` (duration, default 30 s),
   * `PITSTOP_WEBHOOK_CONCURRENCY` (default 16).
   */
  webhook: WebhookOptions & { timeoutMs: number; concurrency: number };
}

/** Thrown for a bad variable; its message names the variable and is meant to be printed alone. */
export class ConfigError extends Error {}

const nonEmpty = (value: string | undefined) => (value === undefined || value.trim() === "" ? undefined : value.trim());

function duration(env: Record<string, string | undefined>, key: string, fallback: string): string {
  const raw = nonEmpty(env[key]) ?? fallback;
  try {
    const parsed = parseDuration(/^\d+$/.test(raw) ? Number(raw) : raw, key);
    durationMs(parsed, key);
    return parsed;
  } catch (error) {
    const reason = error instanceof PitstopError ? error.message : String(error);
    throw new ConfigError(`${key}=${raw} is invalid: ${reason}`);
  }
}

function flag(env: Record<string, string | undefined>, key: string): boolean {
  const raw = (nonEmpty(env[key]) ?? "0").toLowerCase();
  if (["1", "true", "yes"].includes(raw)) return true;
  if (["0", "false", "no"].includes(raw)) return false;
  throw new ConfigError(`${key}=${env[key]} is invalid: use 1 or 0`);
}

function webhookConfig(env: Record<string, string | undefined>): PitstopConfig["webhook"] {
  const secret = nonEmpty(env.PITSTOP_SIGNING_SECRET);
  if (secret !== undefined) {
    try {
      decodeSigningSecret(secret);
    } catch (error) {
      throw new ConfigError(`PITSTOP_SIGNING_SECRET is invalid: ${(error as Error).message}`);
    }
  }
  const concurrency = nonEmpty(env.PITSTOP_WEBHOOK_CONCURRENCY) ?? "16";
  if (!/^\d+$/.test(concurrency) || Number(concurrency) < 1 || Number(concurrency) > 1000) {
    throw new ConfigError(`PITSTOP_WEBHOOK_CONCURRENCY=${concurrency} is invalid: use a number from 1 to 1000`);
  }
  return {
    ...(secret !== undefined && { signingSecret: secret }),
    timeoutMs: durationMs(duration(env, "PITSTOP_WEBHOOK_TIMEOUT", "PT30S")),
    concurrency: Number(concurrency),
  };
}

/** Reads the configuration from a plain object of variables (process.env, Deno.env, Workers env). */
export function readConfig(env: Record<string, string | undefined>): PitstopConfig {
  const store = nonEmpty(env.PITSTOP_STORE) ?? "memory";
  if (store !== "memory" && store !== "mongodb") {
    throw new ConfigError(`PITSTOP_STORE=${store} is invalid: use "memory" or "mongodb"`);
  }
  const maxBody = nonEmpty(env.PITSTOP_MAX_BODY) ?? "1048576";
  if (!/^\d+$/.test(maxBody) || Number(maxBody) < 1) {
    throw new ConfigError(`PITSTOP_MAX_BODY=${maxBody} is invalid: use a positive number of bytes`);
  }
  const uri = nonEmpty(env.MONGODB_URI);
  if (store === "mongodb" && uri === undefined) {
    throw new ConfigError("MONGODB_URI is required when PITSTOP_STORE=mongodb");
  }
  const callbackUrl = nonEmpty(env.PITSTOP_CALLBACK_URL);
  if (callbackUrl !== undefined) {
    try {
      checkCallbackUrl(callbackUrl, { allowPrivate: true });
    } catch (error) {
      throw new ConfigError(`PITSTOP_CALLBACK_URL is invalid: ${(error as Error).message}`);
    }
  }
  return {
    store,
    lockTime: duration(env, "PITSTOP_LOCK_TIME", "PT15M"),
    loopTime: duration(env, "PITSTOP_LOOP_TIME", "PT1M"),
    token: nonEmpty(env.PITSTOP_TOKEN),
    maxBodyBytes: Number(maxBody),
    heartbeatMs: durationMs(duration(env, "PITSTOP_HEARTBEAT", "PT15S")),
    mongodb: {
      uri,
      dbName: nonEmpty(env.PITSTOP_MONGODB_DB) ?? "pitstop",
      collection: nonEmpty(env.PITSTOP_MONGODB_COLLECTION) ?? "messages",
    },
    ...(callbackUrl !== undefined && { callbackUrl }),
    allowPrivateCallbacks: flag(env, "PITSTOP_ALLOW_PRIVATE_CALLBACKS"),
    webhook: webhookConfig(env),
  };
}

/** The `createApp` options the configuration sets. */
export function appOptions(config: PitstopConfig): AppOptions {
  return { token: config.token, maxBodyBytes: config.maxBodyBytes, heartbeatMs: config.heartbeatMs };
}

/** `PORT` (default 8787) and `HOST` (default 127.0.0.1) of the runtimes that listen themselves. */
export function listenAddress(env: Record<string, string | undefined>): { port: number; host: string } {
  const port = nonEmpty(env.PORT) ?? "8787";
  if (!/^\d+$/.test(port) || Number(port) > 65535) throw new ConfigError(`PORT=${port} is invalid: use a port number`);
  return { port: Number(port), host: nonEmpty(env.HOST) ?? "127.0.0.1" };
}

/** The `createPitstop` options the configuration sets: everything but the store. */
export function engineOptions(config: PitstopConfig): Omit<PitstopOptions, "store"> {
  return {
    lockTime: config.lockTime,
    loopTime: config.loopTime,
    defaultCallback: config.callbackUrl,
    checkCallback: callbackChecker({ allowPrivate: config.allowPrivateCallbacks }),
  };
}
