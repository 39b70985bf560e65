import type { MiddlewareHandler } from "hono";
import { decodeBase64Url, encodeBase64Url } from "hono/utils/encode";
import { PitstopError } from "../errors.ts";
import { durationMs, formatTime, parseDuration } from "../schedule.ts";

/*
 * Stream tickets: a browser's EventSource cannot send an Authorization header, so it opens
 * `GET /events?ticket=…` with a short-lived ticket instead of putting the token in a URL. A ticket
 * is `<payload>.<signature>` (base64url): the payload is `{"topic","exp"}`, the signature an
 * HMAC-SHA256 under a key derived from the API token. Nothing is stored: any instance sharing the
 * token checks any ticket.
 */

/** Longest a ticket is valid. */
const MAX_TICKET_TTL_MS = 5 * 60_000;
/** How long a ticket is valid when `ttl` is not given. */
const DEFAULT_TICKET_TTL_MS = 60_000;

const encoder = new TextEncoder();
const hmac = { name: "HMAC", hash: "SHA-256" } as const;
/** base64url without padding: nothing in a ticket needs escaping in a URL. */
const base64url = (bytes: ArrayBufferLike) => encodeBase64Url(bytes).replace(/=+$/, "");

/** Issues and checks the tickets of one API token. */
export interface TicketSigner {
  /** A ticket for `topic` (absent: `"default"`), valid `ttl` (ISO-8601 or ms, at most 5 minutes) from `now`. */
  issue(request: { topic?: string; ttl?: string | number }, now: number): Promise<{ ticket: string; expiresAt: string }>;
  /**
   * Throws `unauthorized` unless `ticket` is one of ours for `topic`, and `ticket_expired` once
   * it expired.
   */
  check(ticket: string, topic: string, now: number): Promise<void>;
}

/** The ticket signer of `token`: its key is HMAC(token, "pitstop-ticket"), never the token itself. */
export function ticketSigner(token: string): TicketSigner {
  let key: Promise<CryptoKey> | undefined;
  const keyOf = () =>
    (key ??= (async () => {
      const base = await crypto.subtle.importKey("raw", encoder.encode(token), hmac, false, ["sign"]);
      const derived = await crypto.subtle.sign("HMAC", base, encoder.encode("pitstop-ticket"));
      return crypto.subtle.importKey("raw", derived, hmac, false, ["sign", "verify"]);
    })());

  return {
    async issue({ topic = "default", ttl }, now) {
      const ttlMs = ttl === undefined ? DEFAULT_TICKET_TTL_MS : durationMs(parseDuration(ttl, "ttl"), "ttl");
      if (ttlMs > MAX_TICKET_TTL_MS) throw new PitstopError("invalid_request", "ttl must be at most 5 minutes (PT5M)", { issues: [{ path: ["ttl"], message: "ttl must be at most 5 minutes (PT5M)" }] });
      const exp = now + ttlMs;
      const payload = base64url(encoder.encode(JSON.stringify({ topic, exp })).buffer);
      const signature = await crypto.subtle.sign("HMAC", await keyOf(), encoder.encode(payload));
      return { ticket: `${payload}.${base64url(signature)}`, expiresAt: formatTime(exp) };
    },
    async check(ticket, topic, now) {
      const refused = (why: string) => new PitstopError("unauthorized", `${why}: ask POST /tickets for a new one.`);
      const [payload, signature, extra] = ticket.split(".");
      let claims: { topic: string; exp: number };
      try {
        if (!payload || !signature || extra !== undefined) throw new Error("not two parts");
        if (!(await crypto.subtle.verify("HMAC", await keyOf(), decodeBase64Url(signature), encoder.encode(payload)))) throw new Error("bad signature");
        claims = JSON.parse(new TextDecoder().decode(decodeBase64Url(payload)));
      } catch {
        throw refused("The ticket is not valid (altered, or signed with another token)");
      }
      if (claims.topic !== topic) throw refused(`The ticket is for topic "${claims.topic}", not "${topic}"`);
      if (now >= claims.exp) throw new PitstopError("ticket_expired", `The ticket expired at ${formatTime(claims.exp)}: ask POST /tickets for a new one.`);
    },
  };
}

/**
 * The API's auth with tickets: `GET /events?ticket=…` is let in by its ticket (for the topic it
 * asks for, until it expires); every other request, and `/events` without a ticket, goes through
 * `bearer`.
 */
export function withTickets(signer: TicketSigner, bearer: MiddlewareHandler, now: () => number): MiddlewareHandler {
  return async (c, next) => {
    const ticket = c.req.path === "/events" && (c.req.method === "GET" || c.req.method === "HEAD") ? c.req.query("ticket") : undefined;
    if (ticket === undefined) return bearer(c, next);
    await signer.check(ticket, c.req.query("topic") ?? "default", now());
    await next();
  };
}
