import { denoSqliteAdapter } from "../stores/sqlite-deno.ts";
import { prepareServer } from "./compose.ts";

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

function fail(message: string): never {
  console.error(`pitstop: ${message}`);
  Deno.exit(1);
}

const server = await prepareServer(Deno.env.toObject(), { tty: Deno.stdout.isTerminal(), sqlite: (path) => denoSqliteAdapter(path) }).catch((error: Error) => fail(error.message));
let http: ReturnType<typeof Deno.serve>;
try {
  http = Deno.serve(
    { port: server.port, hostname: server.host, onListen: ({ hostname, port }) => server.log("info", server.listeningLine(hostname, port)) },
    server.app.fetch,
  );
} catch (error) {
  fail(`cannot listen on ${server.host}:${server.port}: ${(error as Error).message}`);
}
server.startWebhooks();

// http.shutdown() waits for open responses, SSE streams included, which end only when the engine
// closes: so it is started, not awaited.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void server.shutdown(signal, () => void http.shutdown()).then(() => Deno.exit(0)));
}
