// The one class of workerd's built-in `cloudflare:workers` module pitstop uses, typed by hand for
// the same reason as src/runtimes/workers-env.ts: @cloudflare/workers-types would redeclare the
// DOM globals.
declare module "cloudflare:workers" {
  /** Base class of a Durable Object whose public methods stubs can call (RPC). */
  /** `Ctx`: the part of the object's state the subclass uses (workerd passes the whole of it). */
  export abstract class DurableObject<Env = unknown, Ctx = unknown> {
    protected readonly ctx: Ctx;
    protected readonly env: Env;
    constructor(ctx: Ctx, env: Env);
  }
}
