import { PitstopError } from "./errors.ts";
import { durationMs, parseDuration } from "./schedule.ts";

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
  /** `MONGODB_URI`, `PITSTOP_MONGODB_DB`, `PITSTOP_MONGODB_COLLECTION`. */
  mongodb: { uri?: string; dbName: string; collection: string };
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
  return {
    store,
    lockTime: duration(env, "PITSTOP_LOCK_TIME", "PT15M"),
    loopTime: duration(env, "PITSTOP_LOOP_TIME", "PT1M"),
    token: nonEmpty(env.PITSTOP_TOKEN),
    maxBodyBytes: Number(maxBody),
    mongodb: {
      uri,
      dbName: nonEmpty(env.PITSTOP_MONGODB_DB) ?? "pitstop",
      collection: nonEmpty(env.PITSTOP_MONGODB_COLLECTION) ?? "messages",
    },
  };
}
