/**
 * Runs a double as a process: listens on 127.0.0.1 (port `PORT`, or a free one), prints its URI
 * as the first line of stdout, and stops on SIGINT or SIGTERM.
 *
 *   node --import tsx tools/mongo-double/main.ts
 */
import { startMongoDouble } from "./index.ts";

const port = process.env.PORT ? Number(process.env.PORT) : undefined;
const double = await startMongoDouble({ port });
console.log(double.uri);
const stop = () => void double.close().then(() => process.exit(0));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
