import type { Delivery, Pitstop } from "../engine/index.ts";
import { PitstopError } from "../errors.ts";
import { consoleLogger, type Logger } from "../log.ts";
import { formatTime } from "../schedule.ts";
import { checkCallbackUrl } from "./callback-url.ts";
import { base64, hmac, importKey } from "./sign.ts";

/** Options of webhook delivery, shared by `tickWebhooks` and `startWebhookLoop`. */
export interface WebhookOptions {
  /** `whsec_…` Standard Webhooks secret. Without one, no `webhook-signature` header is sent. */
  signingSecret?: string;
  /** Longest wait for the response headers; a slower receiver counts as a failure. @default 30000 */
  timeoutMs?: number;
  /** Most requests in flight at once. @default 16 */
  concurrency?: number;
  /** The fetch to call. @default globalThis.fetch */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Where a failed call (one `warn` line each) and a store error (`error`) are written. @default consoleLogger */
  log?: Logger;
  /** Told of errors other than a lost lock: a failed ack or nack, a failed claim. @default an `error` line in `log` */
  onError?: (error: unknown, delivery?: Delivery) => void;
  /**
   * Checks a callback URL again before each call (the policy may have changed since the message
   * was stored); throws to refuse it, which fails the delivery. Give it the checker the engine
   * was given. @default checkCallbackUrl: loopback, private, link-local and metadata hosts refused
   */
  checkCallback?: (url: string) => string;
  /** Told of each call that reached the network: its HTTP status (`"error"` when none came back, a timeout say) and its duration in seconds. */
  onCall?: (code: string, seconds: number) => void;
}

/** What one webhook call came to: 2xx acks, 410 Gone removes, anything else nacks. */
export type WebhookOutcome = "delivered" | "failed" | "removed";

const encoder = new TextEncoder();
/** Longest `Retry-After` honoured. */
const MAX_RETRY_AFTER_MS = 365 * 24 * 3600 * 1000;

/** The message id as header-safe text: UTF-8 percent-encoded beyond printable ASCII, and `%` and `:`. */
function headerSafe(id: string): string {
  let text = "";
  for (const byte of encoder.encode(id)) {
    const plain = byte > 0x20 && byte < 0x7f && byte !== 0x25 && byte !== 0x3a;
    text += plain ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return text;
}

/** `Retry-After` (seconds or an HTTP date) as a delay in ms from `now`, or undefined. */
function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  // A date already past means "retry now".
  return Number.isNaN(ms) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

function fetchFailure(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  // Node's fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS error) is the cause.
  const detail = cause instanceof Error ? cause.message || (cause as { code?: string }).code : undefined;
  return `fetch failed: ${detail || (error instanceof Error ? error.message : String(error))}`;
}

type Attempt = { outcome: "delivered" } | { outcome: "removed" } | { outcome: "failed"; error: string; retryIn?: number };

/**
 * A function that POSTs one delivery to its callback and settles it: 2xx acks, 410 Gone removes
 * the message (recurring ones included), anything else nacks with `lastError` set ("HTTP 500",
 * "timeout after 30000 ms", "fetch failed: …") and `Retry-After` as the retry delay.
 *
 * The body is `{"id","message","attempt","at","deadline"}` (`at`: the occurrence; `deadline`: when
 * the lock expires, after which the message is delivered again; both ISO-8601 UTC). Headers
 * follow Standard Webhooks; `webhook-id` is `<id>:<at in epoch ms>` (the id percent-encoded as
 * needed), the same for every retry of one occurrence, so receivers can drop duplicates by it.
 */
export function webhookDeliverer(pitstop: Pitstop, options: WebhookOptions = {}): (delivery: Delivery) => Promise<WebhookOutcome> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const key = options.signingSecret === undefined ? undefined : importKey(options.signingSecret);
  const log = options.log ?? consoleLogger;
  const onError = options.onError ?? reportTo(log);
  const checkCallback = options.checkCallback ?? ((url: string) => checkCallbackUrl(url));

  const post = async (delivery: Delivery): Promise<Attempt> => {
    let url: string;
    try {
      url = checkCallback(delivery.callback ?? "");
    } catch (error) {
      return { outcome: "failed", error: `callback refused: ${(error as Error).message}` };
    }
    const body = JSON.stringify({ id: delivery.id, message: delivery.message, attempt: delivery.attempt, at: formatTime(delivery.at), deadline: formatTime(delivery.lockedUntil) });
    const webhookId = `${headerSafe(delivery.id)}:${delivery.at}`;
    const timestamp = Math.floor(pitstop.now() / 1000);
    const headers: Record<string, string> = { "content-type": "application/json", "webhook-id": webhookId, "webhook-timestamp": String(timestamp) };
    if (key) headers["webhook-signature"] = `v1,${base64(await hmac(await key, webhookId, timestamp, body))}`;
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    const started = performance.now();
    try {
      // Redirects are not followed: the target was never checked against the callback policy.
      response = await fetchFn(url, { method: "POST", headers, body, redirect: "manual", signal });
    } catch (error) {
      options.onCall?.("error", (performance.now() - started) / 1000);
      return { outcome: "failed", error: signal.aborted ? `timeout after ${timeoutMs} ms` : fetchFailure(error) };
    }
    options.onCall?.(String(response.status), (performance.now() - started) / 1000);
    response.body?.cancel().catch(() => {});
    if (response.status >= 200 && response.status < 300) return { outcome: "delivered" };
    if (response.status === 410) return { outcome: "removed" };
    return { outcome: "failed", error: `HTTP ${response.status}`, retryIn: retryAfterMs(response.headers.get("retry-after"), pitstop.now()) };
  };

  return async (delivery) => {
    const attempt = await post(delivery).catch((error: unknown): Attempt => ({ outcome: "failed", error: String(error) }));
    if (attempt.outcome === "failed") {
      const retry = attempt.retryIn === undefined ? "" : ` (Retry-After: ${attempt.retryIn} ms)`;
      log("warn", `webhook "${delivery.id}" attempt ${delivery.attempt} failed: ${attempt.error}${retry}`);
    }
    try {
      if (attempt.outcome === "delivered") await delivery.ack();
      else if (attempt.outcome === "removed") await delivery.remove();
      else await delivery.nack({ error: attempt.error, ...(attempt.retryIn !== undefined && { retryIn: attempt.retryIn }) });
    } catch (error) {
      // A lost lock (it expired, or the message was replaced or removed meanwhile) is expected.
      if (!(error instanceof PitstopError && error.code === "lock_lost")) onError(error, delivery);
    }
    return attempt.outcome;
  };
}

/** The default `onError`: one `error` line in `log`. */
export function reportTo(log: Logger): (error: unknown, delivery?: Delivery) => void {
  return (error, delivery) => log("error", delivery ? `webhook delivery of "${delivery.id}" failed` : "webhook deliveries failed", error);
}

