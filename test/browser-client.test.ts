import { build } from "esbuild";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { browserSkipReason, launchBrowser } from "./support/browser.ts";
import { jsonClient, serveInProcess } from "./support/http.ts";

/*
 * A page served from one origin listens with the client (bundled for the browser by esbuild) to
 * pitstop on another origin, with a token set: CORS lets it call the API, and the client opens
 * the stream with a ticket because it runs in a browser. It receives a message the test stores,
 * acks it, and the test sees it gone through the API.
 */

const TOKEN = "s3cret-browser";

const page = (pitstop: string) => `<!doctype html>
<title>pitstop client</title>
<link rel="icon" href="data:,">
<script type="module">
  import { createClient } from "/client.js";
  const client = createClient({ baseUrl: ${JSON.stringify(pitstop)}, token: ${JSON.stringify(TOKEN)} });
  const listening = (window.listening = client.listen({ topic: "browser" }));
  window.acked = [];
  (async () => {
    for await (const delivery of listening) {
      await delivery.ack();
      window.acked.push(delivery.id);
    }
  })().catch((error) => (window.failure = String(error)));
</script>`;

describe.skipIf(browserSkipReason)("the client in a browser", () => {
  let browser: Browser;
  let pageServer: Server;
  let pageOrigin: string;
  const pitstop = createPitstop({ store: memoryStore(), log: () => {} });
  let api: { url: string; close(): Promise<void> };
  /** What reached pitstop: method, path and query, and whether an Authorization header came. */
  const requests: { method: string; path: string; ticket: boolean; authorization: boolean }[] = [];

  beforeAll(async () => {
    const bundle = await build({ entryPoints: ["src/client/index.ts"], bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" });
    const client = bundle.outputFiles[0]!.text;
    let html = "";
    pageServer = createServer((req, res) => {
      if (req.url === "/client.js") res.writeHead(200, { "content-type": "text/javascript" }).end(client);
      else if (req.url === "/") res.writeHead(200, { "content-type": "text/html" }).end(html);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;

    const app = createApp(pitstop, { token: TOKEN, corsOrigins: [pageOrigin], log: () => {} });
    api = await serveInProcess((request) => {
      const url = new URL(request.url);
      requests.push({ method: request.method, path: url.pathname, ticket: url.searchParams.has("ticket"), authorization: request.headers.has("authorization") });
      return app.fetch(request);
    });
    html = page(api.url);
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await new Promise((resolve) => pageServer?.close(resolve));
    await pitstop.close();
  });

  it("listens across origins with a ticket, receives a message and acks it", async () => {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on("pageerror", (error) => errors.push(error.message));
    tab.on("console", (message) => message.type() === "error" && errors.push(message.text()));
    await tab.goto(`${pageOrigin}/`);
    // Connected: the stream's `: connected as` comment named the consumer.
    await tab.waitForFunction(() => (window as any).listening?.consumer !== undefined || (window as any).failure, undefined, { timeout: 20_000 });
    expect(await tab.evaluate(() => (window as any).failure), errors.join("\n")).toBeUndefined();

    const call = jsonClient(api.url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect((await call("POST", "/messages", { message: { id: "from-test", hello: "browser" }, topic: "browser" })).status).toBe(201);
    await tab.waitForFunction(() => (window as any).acked.length > 0 || (window as any).failure, undefined, { timeout: 20_000 });
    expect(await tab.evaluate(() => (window as any).acked), errors.join("\n")).toEqual(["from-test"]);
    expect((await call("GET", "/messages/from-test")).json).toMatchObject({ error: "not_found" });

    // The stream went out with a ticket and no token; the ticket and the ack went through CORS.
    const stream = requests.filter((r) => r.path === "/events");
    expect(stream.length).toBeGreaterThanOrEqual(1);
    expect(stream.every((r) => r.method === "GET" && r.ticket && !r.authorization)).toBe(true);
    expect(requests).toContainEqual({ method: "OPTIONS", path: "/tickets", ticket: false, authorization: false });
    expect(requests).toContainEqual({ method: "POST", path: "/tickets", ticket: false, authorization: true });
    expect(requests).toContainEqual({ method: "POST", path: "/messages/from-test/ack", ticket: false, authorization: true });
    expect(errors).toEqual([]);
  });
});
