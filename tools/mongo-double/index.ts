/**
 * mongo-double: a small, strict MongoDB server for tests. The real `mongodb` driver connects to
 * it over TCP, so a store is tested through the real driver without a mongod. README.md says what
 * it supports and where it differs from mongod; `main.ts` runs it as a process.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";
import { CLOSE, Engine, MAX_MESSAGE_SIZE, type MongoDoubleFailure } from "./engine.ts";
import { handleMessage } from "./wire.ts";

export type { MongoDoubleFailure } from "./engine.ts";

/** A running double. */
export interface MongoDouble {
  /** mongodb://127.0.0.1:PORT/?directConnection=true */
  uri: string;
  /** Commands received so far, by command name (e.g. `{ find: 3, update: 10 }`), injected failures included. */
  commandCounts(): Record<string, number>;
  /**
   * Makes the next `n` commands named `name` fail: `"network"` closes the connection before the
   * command runs, `"network-after"` runs it (its effects are applied) and then closes the
   * connection without the reply, `{ code }` replies `ok: 0` with that code without running it.
   */
  failNext(name: string, n: number, kind: MongoDoubleFailure): void;
  /** Drops all data and open cursors (command counts and pending failures are kept). */
  reset(): void;
  /** Stops listening and closes every connection. Safe to call twice. */
  close(): Promise<void>;
}

/** Options of {@link startMongoDouble}. */
export interface MongoDoubleOptions {
  /** TCP port on 127.0.0.1. @default 0 (a free port) */
  port?: number;
}

/** Starts a double on 127.0.0.1. */
export async function startMongoDouble(options: MongoDoubleOptions = {}): Promise<MongoDouble> {
  const engine = new Engine();
  const sockets = new Set<Socket>();
  let connections = 0;
  let requests = 0;

  const server = createServer((socket) => {
    const connectionId = ++connections;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
    // Clients reset connections when they close; there is nothing to report.
    socket.on("error", () => {});
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && !socket.destroyed) {
        const length = pending.readInt32LE(0);
        if (length < 16 || length > MAX_MESSAGE_SIZE) {
          socket.destroy();
          return;
        }
        if (pending.length < length) return;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        const reply = handleMessage(engine, message, connectionId, ++requests);
        if (reply === CLOSE) socket.destroy();
        else if (reply) socket.write(reply);
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    uri: `mongodb://127.0.0.1:${port}/?directConnection=true`,
    commandCounts: () => ({ ...engine.counts }),
    failNext: (name, n, kind) => engine.failNext(name, n, kind),
    reset: () => engine.reset(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
