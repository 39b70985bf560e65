import { createApp } from "./app.ts";
import { ConfigError, appOptions, engineOptions, listenAddress, readConfig, type PitstopConfig } from "./config.ts";
import { createPitstop, type Pitstop } from "./pitstop.ts";
import { storeFromConfig } from "./stores/from-config.ts";
import { startWebhookLoop } from "./webhook.ts";

/** Everything a long-running runtime (Node, Deno) serves, built from its environment. */
export interface PreparedServer {
  config: PitstopConfig;
  port: number;
  host: string;
  pitstop: Pitstop;
  app: ReturnType<typeof createApp>;
  /** The line to print once listening, with the address the runtime reports. */
  listeningLine(address: string, port: number): string;
  /** Starts the webhook loop; returns what `shutdown` needs. */
  startWebhooks(): void;
  /**
   * On a signal, once: stops accepting (`stopListening`), stops webhooks (letting calls in
   * flight finish, so none is sent twice), then the engine (ending SSE streams and releasing the
   * locks their clients held, so other processes get those messages at once).
   */
  shutdown(signal: string, stopListening: () => unknown): Promise<void>;
}

/**
 * Reads the configuration and opens the store. Rejects with an `Error` whose message is the one
 * line to print (naming the bad variable, or why the store cannot be opened).
 */
export async function prepareServer(env: Record<string, string | undefined>): Promise<PreparedServer> {
  let config: PitstopConfig;
  let address: { port: number; host: string };
  try {
    config = readConfig(env);
    address = listenAddress(env);
  } catch (error) {
    throw error instanceof ConfigError ? error : new Error(String(error));
  }
  const store = await storeFromConfig(config, { connect: true }).catch((error: unknown) => {
    throw new Error(`cannot open the ${config.store} store: ${(error as Error).message}`);
  });
  const pitstop = createPitstop({ store, ...engineOptions(config) });
  let webhooks: { stop(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;
  return {
    config,
    ...address,
    pitstop,
    app: createApp(pitstop, appOptions(config)),
    listeningLine: (host, port) => `pitstop listening on http://${host.includes(":") ? `[${host}]` : host}:${port} (store: ${store.name})`,
    startWebhooks() {
      if (config.webhook.signingSecret === undefined) {
        console.log("pitstop: webhooks go out unsigned (set PITSTOP_SIGNING_SECRET to sign them)");
      }
      if (config.webhook.timeoutMs >= pitstop.lockTimeMs) {
        console.warn("pitstop: PITSTOP_WEBHOOK_TIMEOUT is not shorter than PITSTOP_LOCK_TIME: a slow receiver may get the same message twice");
      }
      webhooks = startWebhookLoop(pitstop, config.webhook);
    },
    shutdown(signal, stopListening) {
      stopping ??= (async () => {
        console.log(`pitstop: ${signal}, shutting down`);
        await stopListening();
        await webhooks?.stop();
        await pitstop.close();
      })();
      return stopping;
    },
  };
}
