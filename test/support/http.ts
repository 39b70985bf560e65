import { Agent, request } from "node:http";

/** A JSON call's answer: the status and the parsed body (undefined when the body is empty). */
export interface JsonResponse {
  status: number;
  json: any;
}

/** One request as a {@link Transport} sends it. */
export interface TransportRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** Sends one request and reads its whole answer as text. */
export type Transport = (url: string, init: TransportRequest) => Promise<{ status: number; text: string }>;

/** The global `fetch`, as any HTTP client would call. */
export const viaFetch: Transport = async (url, init) => {
  const response = await fetch(url, init);
  return { status: response.status, text: await response.text() };
};

/** An app's own `request` (Hono's `app.request`): in-process, no socket; the base is then "". */
export function viaApp(app: { request(path: string, init: RequestInit): Response | Promise<Response> }): Transport {
  return async (path, init) => {
    const response = await app.request(path, init);
    return { status: response.status, text: await response.text() };
  };
}

/** node:http on a keep-alive agent: lighter than fetch, so a bench client's own GC pauses stay small. */
export function viaNodeHttp(agent = new Agent({ keepAlive: true, maxSockets: 64 })): Transport {
  return (url, { method, headers, body }) =>
    new Promise((resolve, reject) => {
      const length = body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) };
      const req = request(url, { method, agent, headers: { ...headers, ...length } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      });
      req.on("error", reject);
      req.end(body);
    });
}

/** Options of {@link jsonClient}. */
export interface JsonClientOptions {
  /** Sent with every call (e.g. `authorization`), besides `content-type: application/json`. */
  headers?: Record<string, string>;
  /** How calls are sent. @default viaFetch */
  transport?: Transport;
}

/** Makes JSON calls to `base + path`. */
export type JsonCall = (method: string, path: string, body?: unknown) => Promise<JsonResponse>;

/**
 * The one HTTP helper of tests and scripts: `call(method, path, body?)` sends `body` as JSON (a
 * string as it is, to send bad JSON) and answers the status with the parsed JSON body.
 */
export function jsonClient(base: string, options: JsonClientOptions = {}): JsonCall {
  const headers = { ...options.headers, "content-type": "application/json" };
  const transport = options.transport ?? viaFetch;
  return async (method, path, body) => {
    const { status, text } = await transport(base + path, { method, headers, body: typeof body === "string" || body === undefined ? body : JSON.stringify(body) });
    return { status, json: text ? JSON.parse(text) : undefined };
  };
}

/** Serves a fetch handler (a Hono app) on 127.0.0.1 in this process, for tests that need a socket. */
export async function serveInProcess(fetch: (request: Request) => Response | Promise<Response>): Promise<{ url: string; close(): Promise<void> }> {
  const { serve } = await import("@hono/node-server");
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            (server as unknown as { closeAllConnections(): void }).closeAllConnections();
            server.close(() => done());
          }),
      }),
    );
  });
}
