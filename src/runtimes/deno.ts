import { denoSqliteAdapter } from "../stores/sqlite-deno.ts";
import type { Pitstop } from "../engine/index.ts";
import { httpUrl, prepareServer } from "./server.ts";

// The part of the Deno namespace used here, declared locally so `tsc` needs no Deno types.
declare const Deno: {
  env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen?(address: { hostname: string; port: number }): void },
    handler: (request: Request) => Response | Promise<Response>,
  ): { shutdown(): Promise<void> };
  addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  exit(code: number): never;
  stdout: { isTerminal(): boolean };
};

/** A pitstop server listening on Deno (`pitstop-edge/deno`). */
export interface DenoServer {
  /** Where it listens, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** The engine it serves, to store or listen in the same process. */
  pitstop: Pitstop;
  /**
   * Stops accepting, stops webhooks, then the engine and its store; safe to call twice.
   * @param reason What the log line says: `<reason>, shutting down`. @default "close"
   */
  close(reason?: string): Promise<void>;
}

/**
 * Starts pitstop on Deno as configured by `env` (the variables `pitstop --help` lists): opens the
 * store, listens on `HOST`:`PORT`, logs `pitstop listening on <url>` and starts the webhook loop.
 * Rejects with an `Error` whose message is one line to print. Installs no signal handlers.
 */
export async function startServer(env: Record<string, string | undefined> = Deno.env.toObject()): Promise<DenoServer> {
  const server = await prepareServer(env, { tty: Deno.stdout.isTerminal(), sqlite: (path) => denoSqliteAdapter(path) });
  let http: ReturnType<typeof Deno.serve>;
  let url = "";
  try {
    http = Deno.serve({ port: server.port, hostname: server.host, onListen: ({ hostname, port }) => {
      url = httpUrl(hostname, port);
      server.log("info", server.listeningLine(hostname, port));
    } }, server.app.fetch);
  } catch (error) {
    await server.pitstop.close();
    throw new Error(`cannot listen on ${server.host}:${server.port}: ${(error as Error).message}`);
  }
  server.startWebhooks();
  // http.shutdown() waits for open responses, SSE streams included, which end only when the engine
  // closes: so it is started, not awaited.
  return { url, pitstop: server.pitstop, close: (reason = "close") => server.shutdown(reason, () => void http.shutdown()) };
}

// `deno run src/runtimes/deno.ts` (`npm run start:deno`) serves with the environment's configuration.
if ((import.meta as ImportMeta & { main?: boolean }).main) {
  const server = await startServer().catch((error: Error) => {
    console.error(`pitstop: ${error.message}`);
    return Deno.exit(1);
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void server.close(signal).then(() => Deno.exit(0)));
  }
}
