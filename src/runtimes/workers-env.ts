import { ConfigError, readConfig, type PitstopConfig } from "./config.ts";

// The few Workers types used here, declared locally: @cloudflare/workers-types redeclares the
// DOM globals (Request, Response, ...) that the rest of the code base types against.

/** Vars, secrets and bindings from wrangler.toml / `wrangler secret put`. */
export type WorkerEnv = Record<string, unknown>;

/** Configuration read once per `env` object (workerd hands every request of an isolate the same one). */
const configs = new WeakMap<WorkerEnv, { config: PitstopConfig; key: string }>();

/** The configuration of `env`'s string vars, and a key that changes when they do. Throws {@link ConfigError}. */
export function configOf(env: WorkerEnv): { config: PitstopConfig; key: string } {
  let read = configs.get(env);
  if (!read) {
    const vars: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) if (typeof value === "string") vars[key] = value;
    const config = readConfig(vars);
    configs.set(env, (read = { config, key: JSON.stringify(config) }));
  }
  return read;
}

/** The 500 a bad configuration answers (and the line it logs); rethrows anything else. */
export function configErrorResponse(error: unknown): Response {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`pitstop: ${error.message}`);
  return Response.json({ error: "invalid_config", message: error.message }, { status: 500 });
}
