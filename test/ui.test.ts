import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop, type Pitstop } from "../src/index.ts";
import { createMetrics } from "../src/metrics/index.ts";
import { browserSkipReason, launchBrowser, screenshotPath } from "./support/browser.ts";
import { jsonClient, serveInProcess, viaApp, type JsonCall } from "./support/http.ts";
import { openSse } from "./support/sse.ts";

const TOKEN = "s3cret-dashboard";

/** A pitstop with metrics and a token, as the runtimes assemble it. */
function setup(options: { token?: string } = { token: TOKEN }) {
  const pitstop = createPitstop();
  const app = createApp(pitstop, { token: options.token, metrics: createMetrics(pitstop) });
  const bearer: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  return { pitstop, app, call: jsonClient("", { headers: bearer, transport: viaApp(app) }) };
}

/** Claims one due message of `topic` and fails it for good (a final nack): a dead letter. */
async function killOne(pitstop: Pitstop, topic: string, error: string) {
  const [delivery] = await pitstop.claim({ topic, limit: 1 });
  await delivery!.nack({ error, final: true });
}

describe("dashboard auth (in-process)", () => {
  it("shows only the token form, and no data, without a credential", async () => {
    const { app, call } = setup();
    await call("POST", "/messages", { message: { id: "secret-order" }, at: Date.now() + 60_000 });
    for (const path of ["/ui", "/ui/messages/secret-order"]) {
      const page = await app.request(path);
      expect(page.status).toBe(401);
      const html = await page.text();
      expect(html).toContain('<form method="post" action="/ui/login">');
      expect(html).not.toContain("secret-order");
    }
    const stream = await app.request("/ui/stream");
    expect(stream.status).toBe(401);
    expect(await stream.json()).toEqual({ error: "unauthorized", message: expect.stringMatching(/Bearer/) });
  });

  it("sets an HttpOnly, SameSite=Strict cookie for the right token (Secure over https) and refuses a wrong one", async () => {
    const { app } = setup();
    const login = (token: string, base = "http://localhost") => app.request(`${base}/ui/login`, { method: "POST", body: new URLSearchParams({ token }) });
    const wrong = await login("nope");
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(await wrong.text()).toContain("Wrong token.");

    const right = await login(TOKEN);
    expect(right.status).toBe(303);
    expect(right.headers.get("location")).toBe("/ui");
    expect(right.headers.get("set-cookie")).toBe(`pitstop_token=${TOKEN}; Path=/; HttpOnly; SameSite=Strict`);
    expect((await login(TOKEN, "https://pitstop.example")).headers.get("set-cookie")).toBe(`pitstop_token=${TOKEN}; Path=/; HttpOnly; Secure; SameSite=Strict`);

    const logout = await app.request("/ui/logout", { method: "POST" });
    expect(logout.status).toBe(303);
    expect(logout.headers.get("set-cookie")).toMatch(/^pitstop_token=; Max-Age=0; Path=\//);
  });

  it("lets the API accept the cookie; a state change by cookie needs the CSRF header", async () => {
    const { app, call } = setup();
    const cookie = `pitstop_token=${TOKEN}`;
    await call("POST", "/messages", { message: { id: "m" }, at: Date.now() + 60_000 });
    expect((await app.request("/messages/m", { headers: { cookie } })).status).toBe(200);
    expect((await app.request("/messages/m", { headers: { cookie: "pitstop_token=wrong" } })).status).toBe(401);

    const forged = await app.request("/messages/m", { method: "DELETE", headers: { cookie } });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ error: "unauthorized", message: expect.stringContaining("x-pitstop-csrf: 1") });
    expect((await call("GET", "/messages/m")).status).toBe(200);

    expect((await app.request("/messages/m", { method: "DELETE", headers: { cookie, "x-pitstop-csrf": "1" } })).status).toBe(204);
    expect((await call("GET", "/messages/m")).status).toBe(404);
  });

  it("serves the page with a CSP that allows only its own nonce'd script and same-origin calls", async () => {
    const { app } = setup({});
    const page = await app.request("/ui");
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy")!;
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it("shows a message's detail: body, schedule, upcoming, attempts, last error, last delivery", async () => {
    const { app, call, pitstop } = setup({});
    await call("POST", "/messages", { message: { id: "digest", to: "ops@example.com" }, cron: "0 9 * * *", tz: "Europe/Berlin", topic: "mail" });
    await call("POST", "/messages", { message: { id: "bounce" }, topic: "mail" });
    await killOne(pitstop, "mail", "SMTP 550");
    const digest = await (await app.request("/ui/messages/digest")).text();
    for (const text of ["cron 0 9 * * *", "Europe/Berlin", "Upcoming", "&quot;to&quot;: &quot;ops@example.com&quot;"]) expect(digest).toContain(text);
    const bounce = await (await app.request("/ui/messages/bounce")).text();
    for (const text of ["dead", "SMTP 550", "Last delivery", "attempt 1", 'data-url="/messages/bounce/redrive"']) expect(bounce).toContain(text);
    expect((await app.request("/ui/messages/none")).status).toBe(404);
  });
});

describe("the stats stream", () => {
  it("sends the panels at once and on change, and never claims a message", async () => {
    const { app, call, pitstop } = setup();
    const server = await serveInProcess(app.fetch);
    try {
      await call("POST", "/messages", { message: { id: "due-now" }, topic: "t" });
      const head = await fetch(`${server.url}/ui/stream`, { method: "HEAD", headers: { authorization: `Bearer ${TOKEN}` } });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-type")).toBe("text/event-stream");
      const stream = await openSse(`${server.url}/ui/stream`, { authorization: `Bearer ${TOKEN}` });
      const first = await stream.nextFrame();
      expect(first.event).toBe("panels");
      expect(first.data).toContain('data-id="due-now"');
      await call("POST", "/messages", { message: { id: "stored-later" }, topic: "t", at: Date.now() + 60_000 });
      let next = await stream.nextFrame(10_000);
      while (!next.data?.includes("stored-later")) next = await stream.nextFrame(10_000);
      stream.close();
      expect((await call("GET", "/messages/due-now")).json).toMatchObject({ state: "pending", attempts: 0 });
      expect(await pitstop.claim({ topic: "t", limit: 10 })).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(browserSkipReason)("the dashboard in Chromium", () => {
  let browser: Browser;
  let server: { url: string; close(): Promise<void> };
  let pitstop: Pitstop;
  let call: JsonCall;

  beforeAll(async () => {
    ({ pitstop } = setup());
    const app = createApp(pitstop, { token: TOKEN, metrics: createMetrics(pitstop) });
    server = await serveInProcess(app.fetch);
    call = jsonClient(server.url, { headers: { authorization: `Bearer ${TOKEN}` } });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await pitstop?.close();
  });

  /** Some history, so the screenshot shows lateness, a timeline and a policy. */
  async function seed() {
    const now = Date.now();
    await call("PUT", "/topics/emails", { maxAttempts: 1 });
    for (let i = 0; i < 40; i++) await call("POST", "/messages", { message: { id: `report-${i}` }, topic: "reports", at: now - Math.round(2 ** (i / 4)) });
    for (const d of await pitstop.claim({ topic: "reports", limit: 40 })) await d.ack();
    for (let i = 0; i < 12; i++) await call("POST", "/messages", { message: { id: `invoice-${i}` }, topic: "billing", at: now + (i + 1) * 4.5 * 60_000 });
    await call("POST", "/messages", { message: { id: "digest" }, topic: "reports", cron: "*/10 * * * *" });
    await call("POST", "/messages", { message: { id: "crm-sync" }, callback: "https://crm.example.com/hooks/pitstop", at: now + 25 * 60_000 });
  }

  it("logs in, shows a stored message without reloading, redrives a dead letter, and saves a screenshot", async () => {
    await seed();
    const page = await browser.newPage({ viewport: { width: 1180, height: 900 } });
    const foreign: string[] = [];
    const errors: string[] = [];
    page.on("request", (request) => void (request.url().startsWith(server.url) || foreign.push(request.url())));
    page.on("pageerror", (error) => errors.push(error.message));

    await page.goto(`${server.url}/ui`);
    await page.locator("#login").waitFor();
    expect(await page.locator("#live").count()).toBe(0);
    await page.fill("input[name=token]", TOKEN);
    await page.click("#login button[type=submit]");
    await page.locator("#status.ok").waitFor();

    // Stored through the API while the page is open: the stream brings it in.
    const navigations: string[] = [];
    page.on("framenavigated", (frame) => navigations.push(frame.url()));
    expect((await call("POST", "/messages", { message: { id: "welcome-7", to: "ada@example.com" }, topic: "emails", at: Date.now() + 2 * 60_000 })).status).toBe(201);
    await page.locator('#next tr[data-id="welcome-7"] .state', { hasText: "pending" }).waitFor();
    await page.locator('#topics tr[data-topic="emails"] [data-state="pending"]', { hasText: "1" }).waitFor();

    // Made due now, it fails (the topic allows one attempt) and shows up as a dead letter.
    expect((await call("POST", "/messages", { message: { id: "welcome-7", to: "ada@example.com" }, topic: "emails" })).status).toBe(200);
    const [delivery] = await pitstop.claim({ topic: "emails", limit: 1 });
    await delivery!.nack({ error: "SMTP 550 mailbox unavailable" });
    expect((await call("GET", "/messages/welcome-7")).json.state).toBe("dead");
    const deadRow = page.locator('#dead tr[data-id="welcome-7"]');
    await deadRow.locator(".error", { hasText: "SMTP 550" }).waitFor();

    await deadRow.getByRole("button", { name: "Redrive" }).click();
    await deadRow.waitFor({ state: "detached" });
    await page.locator('#next tr[data-id="welcome-7"] .state', { hasText: "pending" }).waitFor();
    expect((await call("GET", "/messages/welcome-7")).json).toMatchObject({ state: "pending", attempts: 0 });

    // A second dead letter, left for the screenshot.
    await call("POST", "/messages", { message: { id: "signup-3" }, topic: "signups" });
    await killOne(pitstop, "signups", "HTTP 503 from the CRM");
    await page.locator('#dead tr[data-id="signup-3"]').waitFor();
    await page.locator("#histogram").waitFor();
    expect(navigations).toEqual([]);
    await page.screenshot({ path: screenshotPath("dashboard.png"), fullPage: true });

    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
