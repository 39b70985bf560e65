// The one class of workerd's built-in `cloudflare:workers` module pitstop uses, typed by hand for
// the same reason as src/runtimes/workers-env.ts: @cloudflare/workers-types would redeclare the
// DOM globals.
declare module "cloudflare:workers" {
  /** Base class of a Durable Object whose public methods stubs can call (RPC). */
  export abstract class DurableObject<Env = unknown> {
    protected readonly ctx: import("./durable-object.ts").DurableObjectState;
    protected readonly env: Env;
    constructor(ctx: import("./durable-object.ts").DurableObjectState, env: Env);
  }
}
