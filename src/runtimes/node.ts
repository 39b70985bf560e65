import { serve } from "@hono/node-server";
import { betterSqliteAdapter } from "../stores/sqlite-node.ts";
import { prepareServer } from "./compose.ts";

function fail(message: string): never {
  console.error(`pitstop: ${message}`);
  process.exit(1);
}

const server = await prepareServer(process.env, { tty: process.stdout.isTTY === true, sqlite: (path) => betterSqliteAdapter(path) }).catch((error: Error) => fail(error.message));
const http = serve({ fetch: server.app.fetch, port: server.port, hostname: server.host }, (info) => {
  server.log("info", server.listeningLine(info.address, info.port));
});
http.on("error", (error) => fail(`cannot listen on ${server.host}:${server.port}: ${error.message}`));
server.startWebhooks();

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void server.shutdown(signal, () => http.close()).then(() => process.exit(0)));
}
