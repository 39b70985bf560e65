import * as z from "zod";
import { logLevels, type LogLevel } from "../log.ts";
import { durationMs, parseDuration } from "../schedule.ts";
import { decodeSigningSecret } from "../webhook/sign.ts";
import { checkCallbackUrl } from "../webhook/callback-url.ts";

/** Configuration shared by every runtime, read from environment-like variables. */
export interface PitstopConfig {
  /**
   * `PITSTOP_STORE`: `memory`, `mongodb`, `sqlite` (Node, Deno) or `durable-object` (Workers: a
   * SQLite-backed Durable Object holds the messages and runs the engine). @default "memory"
   */
  store: "memory" | "mongodb" | "sqlite" | "durable-object";
  /** `PITSTOP_LOCK_TIME`, an ISO-8601 duration or ms, normalized. @default "PT15M" */
  lockTime: string;
  /** `PITSTOP_LOOP_TIME`, an ISO-8601 duration or ms, normalized. @default "PT1M" */
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
  /**
   * `MONGODB_URI`, `PITSTOP_MONGODB_DB`, `PITSTOP_MONGODB_COLLECTION`, and on Workers
   * `PITSTOP_MONGODB_VIA_OBJECT=1`: requests go through the `PitstopObject` Durable Object, which
   * keeps one driver connection and one engine across requests (default 0: one per request).
   */
  mongodb: { uri?: string; dbName: string; collection: string; viaObject: boolean };
  /** `PITSTOP_SQLITE_PATH`: the SQLite database file. @default "./pitstop.db" */
  sqlite: { path: string };
  /** `PITSTOP_CALLBACK_URL`: webhook URL of messages stored without a callback (trusted, may be private). */
  callbackUrl?: string;
  /** `PITSTOP_ALLOW_PRIVATE_CALLBACKS=1`: accept callbacks to loopback, private and metadata hosts. @default false */
  allowPrivateCallbacks: boolean;
  /**
   * Webhook delivery: `PITSTOP_SIGNING_SECRET` (`whsec_…`; without it webhooks go out unsigned),
   * `PITSTOP_WEBHOOK_TIMEOUT` (duration, default 30 s), `PITSTOP_WEBHOOK_CONCURRENCY` (default 16).
   */
  webhook: { signingSecret?: string; timeoutMs: number; concurrency: number };
  /** `PITSTOP_CORS_ORIGINS`: comma-separated browser origins allowed by CORS. @default none (no CORS headers) */
  corsOrigins?: string[];
  /** `PITSTOP_METRICS_TOKEN`: a bearer token `GET /metrics` accepts besides `PITSTOP_TOKEN`. */
  metricsToken?: string;
  /**
   * `PITSTOP_LOG_FORMAT` (`json` or `pretty`; absent: the runtime decides, json unless stdout is a
   * TTY) and `PITSTOP_LOG_LEVEL` (`debug`, `info`, `warn`, `error`). @default level "info"
   */
  log: { format?: "json" | "pretty"; level: LogLevel };
}

/** Thrown for a bad variable; its message names the variable and is meant to be printed alone. */
export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

/**
 * One variable: blank counts as unset (then `fallback`), and `parse` turns the text into its
 * value or throws a reason. The issue says `NAME=value is invalid: reason` (or, with `secret`,
 * leaves the value out). `help` says what it sets, for `pitstop --help` ({@link configVariables}).
 */
function variable<T>(key: string, fallback: string | undefined, parse: (raw: string) => T, options: { help: string; secret?: boolean }) {
  return z
    .string()
    .optional()
    .transform((value, ctx): T | undefined => {
      const raw = value === undefined || value.trim() === "" ? fallback : value.trim();
      if (raw === undefined) return undefined;
      try {
        return parse(raw);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        ctx.addIssue({ code: "custom", message: `${options.secret ? key : `${key}=${raw}`} is invalid: ${reason}` });
        return z.NEVER;
      }
    })
    .meta({ description: options.help, ...(fallback !== undefined && { default: fallback }) });
}

const duration = (key: string) => (raw: string) => {
  const parsed = parseDuration(/^\d+$/.test(raw) ? Number(raw) : raw, key);
  durationMs(parsed, key);
  return parsed;
};
const durationInMs = (key: string) => (raw: string) => durationMs(duration(key)(raw));
const integer = (min: number, max: number, what: string) => (raw: string) => {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new Error(what);
  return Number(raw);
};
const flag = (raw: string) => {
  const value = raw.toLowerCase();
  if (["1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no"].includes(value)) return false;
  throw new Error("use 1 or 0");
};
/** What an Authorization: Bearer header can carry (RFC 6750's token68). */
const bearerToken = (raw: string) => {
  if (!/^[A-Za-z0-9._~+/-]+=*$/.test(raw)) throw new Error("use letters, digits and . _ ~ + / - (optionally ending in =)");
  return raw;
};

const oneOf = <T extends string>(...values: T[]) => (raw: string) => {
  if (!(values as string[]).includes(raw)) throw new Error(`use ${values.map((v) => `"${v}"`).join(" or ")}`);
  return raw as T;
};
const text = (raw: string) => raw;
const origins = (raw: string) =>
  raw.split(",").map((origin) => origin.trim()).filter(Boolean).map((origin) => {
    const parsed = URL.canParse(origin) ? new URL(origin) : undefined;
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) throw new Error(`"${origin}" is not an origin: use scheme://host[:port], e.g. https://app.example.com, separated by commas`);
    return origin;
  });

/** The environment as a zod schema: each variable parsed, defaulted and named in its error. */
const envSchema = z
  .object({
    PITSTOP_STORE: variable("PITSTOP_STORE", "memory", oneOf("memory", "mongodb", "sqlite", "durable-object"), { help: "where messages live: memory, mongodb, sqlite (Node, Deno) or durable-object (Workers)" }),
    PITSTOP_LOCK_TIME: variable("PITSTOP_LOCK_TIME", "PT15M", duration("PITSTOP_LOCK_TIME"), { help: "how long a delivered message stays locked awaiting its ack" }),
    PITSTOP_LOOP_TIME: variable("PITSTOP_LOOP_TIME", "PT1M", duration("PITSTOP_LOOP_TIME"), { help: "longest a listener sleeps before looking at the store again" }),
    PITSTOP_TOKEN: variable("PITSTOP_TOKEN", undefined, bearerToken, { help: "bearer token every route but /health and /openapi.json requires (unset: no authentication)", secret: true }),
    PITSTOP_METRICS_TOKEN: variable("PITSTOP_METRICS_TOKEN", undefined, bearerToken, { help: "a bearer token GET /metrics accepts besides PITSTOP_TOKEN", secret: true }),
    PITSTOP_LOG_FORMAT: variable("PITSTOP_LOG_FORMAT", undefined, oneOf("json", "pretty"), { help: "json or pretty (unset: pretty on a terminal, else json)" }),
    PITSTOP_LOG_LEVEL: variable("PITSTOP_LOG_LEVEL", "info", oneOf(...logLevels), { help: "debug, info, warn or error" }),
    PITSTOP_MAX_BODY: variable("PITSTOP_MAX_BODY", "1048576", integer(1, 2 ** 31, "use a positive number of bytes"), { help: "largest request body, in bytes" }),
    PITSTOP_HEARTBEAT: variable("PITSTOP_HEARTBEAT", "PT15S", durationInMs("PITSTOP_HEARTBEAT"), { help: "interval of the SSE heartbeat comments" }),
    MONGODB_URI: variable("MONGODB_URI", undefined, text, { help: "MongoDB connection string (required with PITSTOP_STORE=mongodb)" }),
    PITSTOP_MONGODB_DB: variable("PITSTOP_MONGODB_DB", "pitstop", text, { help: "MongoDB database" }),
    PITSTOP_MONGODB_COLLECTION: variable("PITSTOP_MONGODB_COLLECTION", "messages", text, { help: "MongoDB collection holding the messages" }),
    PITSTOP_MONGODB_VIA_OBJECT: variable("PITSTOP_MONGODB_VIA_OBJECT", "0", flag, { help: "Workers: 1 to route PITSTOP_STORE=mongodb through the Durable Object (one connection)" }),
    PITSTOP_SQLITE_PATH: variable("PITSTOP_SQLITE_PATH", "./pitstop.db", text, { help: "SQLite database file" }),
    PITSTOP_CALLBACK_URL: variable("PITSTOP_CALLBACK_URL", undefined, (raw) => checkCallbackUrl(raw, { allowPrivate: true }), { help: "webhook URL of messages stored without a callback (trusted, may be private)" }),
    PITSTOP_ALLOW_PRIVATE_CALLBACKS: variable("PITSTOP_ALLOW_PRIVATE_CALLBACKS", "0", flag, { help: "1 to accept callbacks to loopback, private and metadata hosts" }),
    PITSTOP_SIGNING_SECRET: variable("PITSTOP_SIGNING_SECRET", undefined, (raw) => decodeSigningSecret(raw) && raw, { help: "whsec_... secret that signs webhooks (unset: they go out unsigned)", secret: true }),
    PITSTOP_WEBHOOK_TIMEOUT: variable("PITSTOP_WEBHOOK_TIMEOUT", "PT30S", durationInMs("PITSTOP_WEBHOOK_TIMEOUT"), { help: "how long one webhook call may take" }),
    PITSTOP_WEBHOOK_CONCURRENCY: variable("PITSTOP_WEBHOOK_CONCURRENCY", "16", integer(1, 1000, "use a number from 1 to 1000"), { help: "webhook calls in flight at once, 1 to 1000" }),
    PITSTOP_CORS_ORIGINS: variable("PITSTOP_CORS_ORIGINS", undefined, origins, { help: "comma-separated browser origins allowed by CORS (unset: no CORS headers)" }),
  })
  .superRefine((env, ctx) => {
    if (env.PITSTOP_STORE === "mongodb" && env.MONGODB_URI === undefined) {
      ctx.addIssue({ code: "custom", message: "MONGODB_URI is required when PITSTOP_STORE=mongodb" });
    }
  });

/** Parses `env` with `schema`, or throws a {@link ConfigError} with the first issue's line. */
function parseEnv<T>(schema: z.ZodType<T>, env: Env): T {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigError(result.error.issues[0].message);
  return result.data;
}

/** Reads the configuration from a plain object of variables (process.env, Deno.env, Workers vars). */
export function readConfig(env: Env): PitstopConfig {
  const e = parseEnv(envSchema, env);
  return {
    store: e.PITSTOP_STORE!,
    lockTime: e.PITSTOP_LOCK_TIME!,
    loopTime: e.PITSTOP_LOOP_TIME!,
    token: e.PITSTOP_TOKEN,
    ...(e.PITSTOP_METRICS_TOKEN !== undefined && { metricsToken: e.PITSTOP_METRICS_TOKEN }),
    log: { ...(e.PITSTOP_LOG_FORMAT !== undefined && { format: e.PITSTOP_LOG_FORMAT }), level: e.PITSTOP_LOG_LEVEL! },
    maxBodyBytes: e.PITSTOP_MAX_BODY!,
    heartbeatMs: e.PITSTOP_HEARTBEAT!,
    mongodb: { uri: e.MONGODB_URI, dbName: e.PITSTOP_MONGODB_DB!, collection: e.PITSTOP_MONGODB_COLLECTION!, viaObject: e.PITSTOP_MONGODB_VIA_OBJECT! },
    sqlite: { path: e.PITSTOP_SQLITE_PATH! },
    ...(e.PITSTOP_CALLBACK_URL !== undefined && { callbackUrl: e.PITSTOP_CALLBACK_URL }),
    allowPrivateCallbacks: e.PITSTOP_ALLOW_PRIVATE_CALLBACKS!,
    webhook: {
      ...(e.PITSTOP_SIGNING_SECRET !== undefined && { signingSecret: e.PITSTOP_SIGNING_SECRET }),
      timeoutMs: e.PITSTOP_WEBHOOK_TIMEOUT!,
      concurrency: e.PITSTOP_WEBHOOK_CONCURRENCY!,
    },
    ...(e.PITSTOP_CORS_ORIGINS?.length && { corsOrigins: e.PITSTOP_CORS_ORIGINS }),
  };
}

const addressSchema = z.object({
  PORT: variable("PORT", "8787", integer(0, 65535, "use a port number"), { help: "port to listen on (0: any free port)" }),
  HOST: variable("HOST", "127.0.0.1", text, { help: "address to listen on" }),
});

/** `PORT` (default 8787) and `HOST` (default 127.0.0.1) of the runtimes that listen themselves. */
export function listenAddress(env: Env): { port: number; host: string } {
  const e = parseEnv(addressSchema, env);
  return { port: e.PORT!, host: e.HOST! };
}

/** One environment variable a runtime reads, as `pitstop --help` lists it. */
export interface ConfigVariable {
  name: string;
  /** What it sets. */
  description: string;
  /** The value used when it is unset or blank. */
  default?: string;
}

/** Every variable {@link readConfig} and {@link listenAddress} read, from their schemas (so the list cannot drift). */
export function configVariables(): ConfigVariable[] {
  return Object.entries({ ...envSchema.shape, ...addressSchema.shape }).map(([name, schema]) => {
    const meta = schema.meta() ?? {};
    return { name, description: String(meta.description), ...(typeof meta.default === "string" && { default: meta.default }) };
  });
}
