import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a {@link Receiver} got. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** `Date.now()` when the body was complete. */
  time: number;
}

/** A local webhook receiver on 127.0.0.1 that records every request and answers through `handler`. */
export interface Receiver {
  url(path?: string): string;
  received: Received[];
  /** Answers each request; the default answers 204. May keep `res` to answer later (or never). */
  handler: (request: Received, res: ServerResponse) => void;
  /** Resolves once `count` requests have arrived in all, or rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  /** Forgets the requests and restores the default handler. */
  reset(): void;
  /** Closes the server and every connection, answered or not. */
  close(): Promise<void>;
}

const answer204 = (_request: Received, res: ServerResponse) => res.writeHead(204).end();

export async function startReceiver(): Promise<Receiver> {
  let waiters: { count: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request = { method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), time: Date.now() };
      receiver.received.push(request);
      receiver.handler(request, res);
      waiters = waiters.filter((w) => (receiver.received.length >= w.count ? (w.resolve(), false) : true));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: Receiver = {
    url: (path = "/hook") => `http://127.0.0.1:${port}${path}`,
    received: [],
    handler: answer204,
    waitFor(count, timeoutMs = 10_000) {
      if (receiver.received.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`got ${receiver.received.length} of ${count} requests in ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    reset() {
      receiver.received.length = 0;
      receiver.handler = answer204;
      waiters = [];
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}

/** A URL on 127.0.0.1 where nothing listens (a port just freed). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/hook`;
}
