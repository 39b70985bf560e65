import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { PitstopError } from "../errors.ts";
import { errorResponse } from "./errors.ts";

/**
 * Who may call the API, in one place. A request proves itself with `Authorization: Bearer
 * <token>` or, from the dashboard, with the token cookie {@link TOKEN_COOKIE} (HttpOnly,
 * SameSite=Strict). A cookie-authenticated POST, PUT or DELETE must also carry
 * {@link CSRF_HEADER}: a page of another origin cannot add that header without a CORS preflight,
 * which pitstop never grants for it, and an HTML form cannot send it at all.
 */

/** The cookie the dashboard keeps the token in. */
export const TOKEN_COOKIE = "pitstop_token";

/** The header (value `1`) a cookie-authenticated state-changing request must send. */
export const CSRF_HEADER = "x-pitstop-csrf";

/** What {@link authenticate} and {@link requireAuth} accept. */
export interface AuthOptions {
  /** Tokens accepted as `Authorization: Bearer <token>`, each compared in constant time. */
  tokens: string[];
  /** The token the cookie must hold (the API token); absent: the cookie is not accepted. */
  cookieToken?: string;
}

/** How a request proved itself: `bearer`, `cookie`, or `none` (no or a wrong credential). */
export type Credential = "bearer" | "cookie" | "none";

/** RFC 6750 `b64token`, after the scheme and one or more spaces. */
const BEARER = /^bearer +([A-Za-z0-9._~+/-]+=*)$/i;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const encoder = new TextEncoder();
const sha256 = async (value: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));

/** The SHA-256 of each configured secret, computed once per {@link AuthOptions}. */
const secretDigests = new WeakMap<AuthOptions, Promise<{ tokens: Uint8Array[]; cookie?: Uint8Array }>>();
const digestsOf = (options: AuthOptions) => {
  let digests = secretDigests.get(options);
  if (!digests) {
    digests = (async () => ({ tokens: await Promise.all(options.tokens.map(sha256)), cookie: options.cookieToken === undefined ? undefined : await sha256(options.cookieToken) }))();
    secretDigests.set(options, digests);
  }
  return digests;
};

/**
 * Whether `value` is one of `secrets`, compared as SHA-256 digests: every byte of every secret is
 * looked at, so the time taken says neither which one matched nor how long they are. Only the
 * value is hashed per request; the secrets' digests are kept.
 */
async function matchesAny(secrets: Uint8Array[], value: string): Promise<boolean> {
  const digest = await sha256(value);
  let found = false;
  for (const secret of secrets) {
    let diff = 0;
    for (let i = 0; i < secret.length; i++) diff |= secret[i]! ^ digest[i]!;
    found = diff === 0 || found;
  }
  return found;
}

/**
 * The request's credential. An `Authorization` header, when sent, is the only one looked at;
 * otherwise the token cookie.
 */
export async function authenticate(c: Context, options: AuthOptions): Promise<Credential> {
  const header = c.req.header("authorization");
  if (header) {
    const token = BEARER.exec(header)?.[1];
    return token !== undefined && (await matchesAny((await digestsOf(options)).tokens, token)) ? "bearer" : "none";
  }
  const cookie = getCookie(c, TOKEN_COOKIE);
  return cookie !== undefined && (await tokenMatches(options, cookie)) ? "cookie" : "none";
}

/** Whether `value` is the token the cookie must hold (what the dashboard's token form checks). */
export async function tokenMatches(options: AuthOptions, value: string): Promise<boolean> {
  const { cookie } = await digestsOf(options);
  return cookie !== undefined && (await matchesAny([cookie], value));
}

const unauthorized = (c: Context, message: string) => {
  c.header("www-authenticate", 'Bearer realm="pitstop"');
  return errorResponse(c, new PitstopError("unauthorized", message));
};

/**
 * Middleware: 401 `unauthorized` unless {@link authenticate} finds a credential, and for a
 * cookie-authenticated POST, PUT or DELETE unless {@link CSRF_HEADER} is sent too.
 */
export function requireAuth(options: AuthOptions): MiddlewareHandler {
  return async (c, next) => {
    const credential = await authenticate(c, options);
    if (credential === "none") return unauthorized(c, "Send Authorization: Bearer <token> with the configured PITSTOP_TOKEN (or log in at /ui).");
    if (credential === "cookie" && !SAFE_METHODS.has(c.req.method) && c.req.header(CSRF_HEADER) !== "1") {
      return unauthorized(c, `A request authenticated by the dashboard cookie must send ${CSRF_HEADER}: 1 (or Authorization: Bearer <token>).`);
    }
    await next();
  };
}

/**
 * Answers `c` with the token cookie set: HttpOnly, SameSite=Strict, Path=/, and Secure when the
 * request came over https (directly, or through a proxy that says so in `X-Forwarded-Proto`).
 */
export function setTokenCookie(c: Context, token: string): void {
  const https = new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
  setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/", secure: https });
}
