import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie } from "hono/cookie";
import type { Child } from "hono/jsx";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { Pitstop } from "../engine/index.ts";
import { authenticate, requireAuth, setTokenCookie, TOKEN_COOKIE, tokenMatches, type AuthOptions } from "../http/auth.ts";
import { errorResponse } from "../http/errors.ts";
import { PitstopError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics/index.ts";
import { Page } from "./layout.tsx";
import { LoginForm } from "./login.tsx";
import { MessageDetail } from "./message.tsx";
import { Panels } from "./panels.tsx";
import { sharedSnapshot, type Snapshot } from "./snapshot.ts";
import { statsStream } from "./stream.ts";

/** Options of the dashboard. */
export interface UiOptions {
  /** The API's auth: the dashboard asks for the token and keeps it in a cookie. @default none: open, as the API then is */
  auth?: AuthOptions;
  /** Where the lateness histogram comes from. @default none: no histogram */
  metrics?: Metrics;
  log: Logger;
  /** How often the stats stream looks for changes, and how long a snapshot is shared. @default 1000 */
  intervalMs?: number;
  /** Longest silence on the stats stream before a comment frame. @default 15000 */
  heartbeatMs?: number;
}

type Env = { Variables: { secureHeadersNonce?: string } };

/**
 * The dashboard, mounted at `/ui`: `GET /` (the page, or the token form), `POST /login`, `POST
 * /logout`, `GET /messages/:id` (one message) and `GET /stream` (the stats stream). Server-rendered
 * with hono/jsx; its one inline script and its styles are the only things the page loads (a CSP
 * says so). Its buttons call the API's own routes.
 */
export function createUi(pitstop: Pitstop, options: UiOptions) {
  const ui = new Hono<Env>();
  const { auth, log } = options;
  const intervalMs = options.intervalMs ?? 1000;
  const snapshot = sharedSnapshot(pitstop, options.metrics, intervalMs);
  // Rendered once per snapshot, however many stats streams are open.
  let rendered: { snapshot: Promise<Snapshot>; html: Promise<string> } | undefined;
  const renderPanels = () => {
    const current = snapshot();
    if (rendered?.snapshot !== current) rendered = { snapshot: current, html: current.then(async (s) => (await (<Panels snapshot={s} />).toString()) as string) };
    return rendered.html;
  };
  const loggedIn = async (c: Context) => auth === undefined || (await authenticate(c, auth)) !== "none";
  const page = (c: Context<Env>, title: string, body: Child, status: 200 | 401 | 404 = 200) =>
    c.html(
      <Page title={title} nonce={c.get("secureHeadersNonce")} loggedIn={auth !== undefined && status !== 401}>
        {body}
      </Page>,
      status,
    );
  const login = (c: Context<Env>, failed = false) => page(c, "pitstop: log in", <LoginForm failed={failed} />, 401);

  ui.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], scriptSrc: [NONCE], styleSrc: ["'unsafe-inline'"], connectSrc: ["'self'"], formAction: ["'self'"], baseUri: ["'none'"], frameAncestors: ["'none'"] },
      strictTransportSecurity: false,
    }),
  );

  ui.get("/", async (c) => {
    if (!(await loggedIn(c))) return login(c);
    return page(
      c,
      "pitstop",
      <div id="live">
        <Panels snapshot={await snapshot()} />
      </div>,
    );
  });

  ui.get("/messages/:id", async (c) => {
    if (!(await loggedIn(c))) return login(c);
    const id = c.req.param("id");
    const view = await pitstop.get(id);
    if (!view) return page(c, "pitstop: not found", <p class="empty">No message with id "{id}".</p>, 404);
    return page(c, `pitstop: ${id}`, <MessageDetail m={view} now={pitstop.now()} />);
  });

  if (auth) ui.use("/stream", requireAuth(auth));
  ui.get("/stream", (c) => {
    // Hono runs GET handlers for HEAD and drops the body: a stream here would read the store every second for nobody.
    if (c.req.method === "HEAD") return c.body(null, 200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    return statsStream(c, renderPanels, { intervalMs, heartbeatMs: options.heartbeatMs ?? 15_000, log });
  });

  ui.post("/login", bodyLimit({ maxSize: 4096, onError: (c) => errorResponse(c, new PitstopError("payload_too_large", "The token form takes at most 4 KiB.")) }), async (c) => {
    if (auth === undefined) return c.redirect("/ui", 303);
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token : "";
    if (!(await tokenMatches(auth, token))) return login(c, true);
    setTokenCookie(c, token);
    return c.redirect("/ui", 303);
  });

  ui.post("/logout", (c) => {
    deleteCookie(c, TOKEN_COOKIE, { path: "/" });
    return c.redirect("/ui", 303);
  });

  return ui;
}
