import type { PitstopConfig } from "../config.ts";
import type { Store } from "../types.ts";
import { memoryStore } from "./memory.ts";

/**
 * The store the configuration names. With `connect`, a MongoDB store is connected and indexed
 * before it is returned, so a server can refuse to start on a bad URI; the driver is imported
 * only when that store is used.
 */
export async function storeFromConfig(config: PitstopConfig, options: { connect: boolean }): Promise<Store> {
  if (config.store === "memory") return memoryStore();
  const { connectMongoStore, mongoStore } = await import("./mongodb.ts");
  const mongo = { url: config.mongodb.uri, dbName: config.mongodb.dbName, collection: config.mongodb.collection };
  return options.connect ? connectMongoStore(mongo) : mongoStore(mongo);
}
