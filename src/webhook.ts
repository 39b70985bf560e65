import { timingSafeEqual } from "./constant-time.ts";
import { PitstopError } from "./errors.ts";
import type { Delivery, Listener } from "./listener.ts";
import type { Pitstop } from "./pitstop.ts";
import { formatTime } from "./schedule.ts";

/** Options of webhook delivery, shared by {@link tickWebhooks} and {@link startWebhookLoop}. */
export interface WebhookOptions {
  /** `whsec_…` Standard Webhooks secret. Without one, no `webhook-signature` header is sent. */
  signingSecret?: string;
  /** Longest wait for the response headers; a slower receiver counts as a failure. @default 30000 */
  timeoutMs?: number;
  /** Most requests in flight at once. @default 16 */
  concurrency?: number;
  /** The fetch to call. @default globalThis.fetch */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Told of errors other than a lost lock: a failed ack or nack, a failed claim. @default console.error */
  onError?: (error: unknown, delivery?: Delivery) => void;
}

/** Options of {@link tickWebhooks}. */
export interface TickOptions extends WebhookOptions {
  /** Most messages claimed by one call; the rest wait for the next. @default 500 */
  maxMessages?: number;
}

/** What one webhook call came to: 2xx acks, 410 Gone removes, anything else nacks. */
export type WebhookOutcome = "delivered" | "failed" | "removed";

/** Counts of one {@link tickWebhooks} call. */
export type TickResult = Record<WebhookOutcome, number>;

/** A running {@link startWebhookLoop}. */
export interface WebhookLoop {
  /** Stops claiming, waits for the requests in flight (each bounded by the timeout), releases the rest. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const SECRET_PREFIX = "whsec_";
/** Longest `Retry-After` honoured. */
const MAX_RETRY_AFTER_MS = 365 * 24 * 3600 * 1000;

/**
 * The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`, at least 24 bytes as the
 * specification asks. @throws Error saying what is wrong (the secret itself is never echoed).
 */
export function decodeSigningSecret(secret: string): Uint8Array<ArrayBuffer> {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error(`a signing secret must start with "${SECRET_PREFIX}"`);
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = Uint8Array.from(atob(secret.slice(SECRET_PREFIX.length)), (c) => c.charCodeAt(0));
  } catch {
    throw new Error(`a signing secret must be "${SECRET_PREFIX}" followed by base64`);
  }
  if (key.length < 24) throw new Error("a signing secret must hold at least 24 bytes (32 base64 characters)");
  return key;
}

const importKey = (secret: string) =>
  crypto.subtle.importKey("raw", decodeSigningSecret(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);

async function hmac(key: CryptoKey, webhookId: string, timestamp: number | string, body: string | Uint8Array): Promise<Uint8Array> {
  const prefix = encoder.encode(`${webhookId}.${timestamp}.`);
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const content = new Uint8Array(prefix.length + bytes.length);
  content.set(prefix);
  content.set(bytes, prefix.length);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, content));
}

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/**
 * The Standard Webhooks `webhook-signature` value, `v1,<base64 HMAC-SHA256>`, over
 * `${webhookId}.${timestamp}.${body}` with `timestamp` in unix seconds.
 */
export async function signWebhook(input: { secret: string; webhookId: string; timestamp: number; body: string }): Promise<string> {
  return `v1,${base64(await hmac(await importKey(input.secret), input.webhookId, input.timestamp, input.body))}`;
}

/** Headers as `Headers` or a plain object such as Node's `IncomingHttpHeaders`. */
export type HeadersInput = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeadersInput, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return typeof value === "string" ? value : undefined;
}

/**
 * For receivers: true when the request carries a valid Standard Webhooks signature of `body`
 * (the raw request body, unparsed) made with `secret`, and its `webhook-timestamp` is within
 * `toleranceSeconds` of `now` (epoch ms). Every space-separated `v1,` signature in the header is
 * tried and compared in constant time; other versions are ignored. Returns false for any missing,
 * malformed, stale or wrong header.
 * @throws Error only for a malformed `secret`.
 */
export async function verifyWebhook(input: {
  secret: string;
  headers: HeadersInput;
  body: string | Uint8Array;
  toleranceSeconds?: number;
  now?: number;
}): Promise<boolean> {
  const key = await importKey(input.secret);
  const [id, timestamp, signatures] = ["webhook-id", "webhook-timestamp", "webhook-signature"].map((n) => header(input.headers, n));
  if (id === undefined || timestamp === undefined || signatures === undefined || !/^\d+$/.test(timestamp)) return false;
  const nowSeconds = (input.now ?? Date.now()) / 1000;
  if (Math.abs(nowSeconds - Number(timestamp)) > (input.toleranceSeconds ?? 300)) return false;
  const expected = await hmac(key, id, timestamp, input.body);
  let valid = false;
  for (const signature of signatures.split(" ")) {
    const [version, value] = signature.split(",", 2);
    if (version !== "v1" || value === undefined) continue;
    let given: Uint8Array;
    try {
      given = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    } catch {
      continue;
    }
    valid ||= timingSafeEqual(given, expected);
  }
  return valid;
}

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
  return Number.isNaN(ms) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(1, ms));
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
 * The body is `{"id","message","attempt","at"}` (`at`: the occurrence, ISO-8601 UTC). Headers
 * follow Standard Webhooks; `webhook-id` is `<id>:<at in epoch ms>` (the id percent-encoded as
 * needed), the same for every retry of one occurrence, so receivers can drop duplicates by it.
 */
export function webhookDeliverer(pitstop: Pitstop, options: WebhookOptions = {}): (delivery: Delivery) => Promise<WebhookOutcome> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const key = options.signingSecret === undefined ? undefined : importKey(options.signingSecret);
  const onError = options.onError ?? defaultOnError;

  const post = async (delivery: Delivery): Promise<Attempt> => {
    let url: string;
    try {
      url = pitstop.checkCallback(delivery.callback ?? "");
    } catch (error) {
      return { outcome: "failed", error: `callback refused: ${(error as Error).message}` };
    }
    const body = JSON.stringify({ id: delivery.id, message: delivery.msg, attempt: delivery.attempt, at: formatTime(delivery.at) });
    const webhookId = `${headerSafe(delivery.id)}:${delivery.at}`;
    const timestamp = Math.floor(pitstop.now() / 1000);
    const headers: Record<string, string> = { "content-type": "application/json", "webhook-id": webhookId, "webhook-timestamp": String(timestamp) };
    if (key) headers["webhook-signature"] = `v1,${base64(await hmac(await key, webhookId, timestamp, body))}`;
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      // Redirects are not followed: the target was never checked against the callback policy.
      response = await fetchFn(url, { method: "POST", headers, body, redirect: "manual", signal });
    } catch (error) {
      return { outcome: "failed", error: signal.aborted ? `timeout after ${timeoutMs} ms` : fetchFailure(error) };
    }
    response.body?.cancel().catch(() => {});
    if (response.status >= 200 && response.status < 300) return { outcome: "delivered" };
    if (response.status === 410) return { outcome: "removed" };
    return { outcome: "failed", error: `HTTP ${response.status}`, retryIn: retryAfterMs(response.headers.get("retry-after"), pitstop.now()) };
  };

  return async (delivery) => {
    const attempt = await post(delivery).catch((error: unknown): Attempt => ({ outcome: "failed", error: String(error) }));
    try {
      if (attempt.outcome === "delivered") await delivery.ack();
      else if (attempt.outcome === "removed") await pitstop.removeLocked(delivery.id, delivery.token);
      else await delivery.nack({ error: attempt.error, ...(attempt.retryIn !== undefined && { retryIn: attempt.retryIn }) });
    } catch (error) {
      // A lost lock (it expired, or the message was replaced or removed meanwhile) is expected.
      if (!(error instanceof PitstopError && error.code === "lock_lost")) onError(error, delivery);
    }
    return attempt.outcome;
  };
}

function defaultOnError(error: unknown, delivery?: Delivery): void {
  console.error(`pitstop: webhook delivery${delivery ? ` of "${delivery.id}"` : "s"}:`, error);
}

/**
 * Delivers the due webhook messages once, for runtimes that cannot keep a loop (Workers
 * `scheduled`): claims in batches of `concurrency`, at most `maxMessages` in all, and POSTs them
 * with at most `concurrency` requests in flight. Resolves when every claimed one is settled.
 * @throws what the store threw on a claim, after the messages already claimed are delivered.
 */
export async function tickWebhooks(pitstop: Pitstop, options: TickOptions = {}): Promise<TickResult> {
  const deliver = webhookDeliverer(pitstop, options);
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const maxMessages = options.maxMessages ?? 500;
  const counts: TickResult = { delivered: 0, failed: 0, removed: 0 };
  const queue: Delivery[] = [];
  let claimed = 0;
  let exhausted = maxMessages <= 0;
  let claimError: { error: unknown } | undefined;
  let refilling: Promise<void> | undefined;

  const refill = () =>
    (refilling ??= (async () => {
      try {
        const batch = await pitstop.claimDue("webhook", Math.min(concurrency, maxMessages - claimed));
        claimed += batch.length;
        queue.push(...batch);
        exhausted = batch.length === 0 || claimed >= maxMessages;
      } catch (error) {
        claimError = { error };
        exhausted = true;
      } finally {
        refilling = undefined;
      }
    })());

  const worker = async () => {
    for (;;) {
      const delivery = queue.shift();
      if (delivery) counts[await deliver(delivery)]++;
      else if (exhausted) return;
      else await refill();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (claimError) throw claimError.error;
  return counts;
}

/**
 * Delivers webhook messages as they fall due, for long-lived runtimes (Node, Deno): one
 * `listen({ webhooks: true })` whose prefetch is the concurrency bound. A failing store is
 * reported to `onError` and listened to again after `retryDelayMs`.
 */
export function startWebhookLoop(pitstop: Pitstop, options: WebhookOptions & { retryDelayMs?: number } = {}): WebhookLoop {
  const deliver = webhookDeliverer(pitstop, options);
  const onError = options.onError ?? defaultOnError;
  const inFlight = new Set<Promise<void>>();
  let listener: Listener | undefined;
  let stopping = false;
  let wakeDelay = () => {};

  const drain = async () => {
    while (inFlight.size > 0) await Promise.all(inFlight);
  };
  const start = (delivery: Delivery) => {
    const done: Promise<void> = deliver(delivery)
      .then(() => {}, (error: unknown) => onError(error, delivery))
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };

  const running = (async () => {
    while (!stopping) {
      const current = (listener = pitstop.listen({ webhooks: true, prefetch: Math.max(1, options.concurrency ?? 16) }));
      try {
        const deliveries = current[Symbol.asyncIterator]();
        for (;;) {
          const next = await deliveries.next();
          // Done means the listener was stopped (by `stop()` or `pitstop.close()`): do not listen again.
          if (next.done || stopping) return;
          start(next.value);
        }
      } catch (error) {
        onError(error);
        await drain();
        await current.stop().catch(() => {});
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.retryDelayMs ?? 1000);
          wakeDelay = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wakeDelay();
      await drain();
      await listener?.stop();
      await running;
    },
  };
}
