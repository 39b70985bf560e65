import { serve } from "@hono/node-server";
import { createApp } from "../app.ts";
import { ConfigError, engineOptions, readConfig, type PitstopConfig } from "../config.ts";
import { createPitstop } from "../pitstop.ts";
import { memoryStore } from "../stores/memory.ts";
import type { Store } from "../types.ts";
import { startWebhookLoop } from "../webhook.ts";

/** Opens the configured store; a Mongo store is connected (and indexed) before serving. */
async function openStore(config: PitstopConfig): Promise<Store> {
  if (config.store === "memory") return memoryStore();
  const { connectMongoStore } = await import("../stores/mongodb.ts");
  return connectMongoStore({ url: config.mongodb.uri, dbName: config.mongodb.dbName, collection: config.mongodb.collection });
}

function fail(message: string): never {
  console.error(`pitstop: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: PitstopConfig;
  try {
    config = readConfig(process.env);
  } catch (error) {
    fail(error instanceof ConfigError ? error.message : String(error));
  }
  const portText = process.env.PORT ?? "8787";
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) fail(`PORT=${portText} is invalid: use a port number`);
  const host = process.env.HOST || "127.0.0.1";

  const store = await openStore(config).catch((error: unknown) => fail(`cannot open the ${config.store} store: ${(error as Error).message}`));
  const pitstop = createPitstop({ store, ...engineOptions(config) });
  const app = createApp(pitstop, { token: config.token, maxBodyBytes: config.maxBodyBytes });

  const server = serve({ fetch: app.fetch, port: Number(portText), hostname: host }, (info) => {
    const shownHost = info.family === "IPv6" ? `[${info.address}]` : info.address;
    console.log(`pitstop listening on http://${shownHost}:${info.port} (store: ${store.name})`);
  });
  server.on("error", (error) => fail(`cannot listen on ${host}:${portText}: ${error.message}`));
  if (config.webhook.signingSecret === undefined) {
    console.warn("pitstop: PITSTOP_SIGNING_SECRET is not set, so webhooks are sent without a webhook-signature header");
  }
  const webhooks = startWebhookLoop(pitstop, config.webhook);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`pitstop: ${signal}, shutting down`);
    server.close();
    // Lets the webhook calls in flight finish (each within PITSTOP_WEBHOOK_TIMEOUT) so they are not sent twice.
    await webhooks.stop();
    // Ends every SSE stream and releases the locks its clients held, so other processes get them at once.
    await pitstop.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

await main();
