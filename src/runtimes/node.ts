import { serve } from "@hono/node-server";
import { betterSqliteAdapter } from "../stores/sqlite-node.ts";
import type { Pitstop } from "../engine/index.ts";
import { httpUrl, prepareServer } from "./server.ts";

/** A pitstop server listening on Node (`pitstop-edge/node`). */
export interface NodeServer {
  /** Where it listens, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** The engine it serves, to store or listen in the same process. */
  pitstop: Pitstop;
  /**
   * Stops accepting, stops webhooks (letting calls in flight finish), then the engine and its
   * store (ending SSE streams and releasing what their clients held). Safe to call twice.
   * @param reason What the log line says: `<reason>, shutting down`. @default "close"
   */
  close(reason?: string): Promise<void>;
}

/** Options of {@link startServer}. */
export interface NodeServerOptions {
  /** Whether stdout is a terminal (pretty log lines unless `PITSTOP_LOG_FORMAT` says). @default process.stdout.isTTY */
  tty?: boolean;
}

/**
 * Starts pitstop on Node as configured by `env` (the variables `pitstop --help` lists): opens the
 * store, listens on `HOST`:`PORT`, logs `pitstop listening on <url>` and starts the webhook loop.
 * Rejects with an `Error` whose message is one line to print: a bad variable, a store that cannot
 * be opened, or an address that cannot be listened on. Installs no signal handlers.
 */
export async function startServer(env: Record<string, string | undefined> = process.env, options: NodeServerOptions = {}): Promise<NodeServer> {
  const server = await prepareServer(env, { tty: options.tty ?? process.stdout.isTTY === true, sqlite: (path) => betterSqliteAdapter(path) });
  let http: ReturnType<typeof serve> | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    http = serve({ fetch: server.app.fetch, port: server.port, hostname: server.host }, (info) => {
      server.log("info", server.listeningLine(info.address, info.port));
      resolve(httpUrl(info.address, info.port));
    });
    http.once("error", (error) => reject(new Error(`cannot listen on ${server.host}:${server.port}: ${error.message}`)));
  }).catch(async (error: Error) => {
    await server.pitstop.close();
    throw error;
  });
  server.startWebhooks();
  return { url, pitstop: server.pitstop, close: (reason = "close") => server.shutdown(reason, () => http?.close()) };
}
