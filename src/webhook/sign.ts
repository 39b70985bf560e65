const encoder = new TextEncoder();

/** True when two byte strings are equal, compared in time that depends only on their lengths. */
function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

const SECRET_PREFIX = "whsec_";

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

/** The signing key of a `whsec_…` secret. */
export const importKey = (secret: string) =>
  crypto.subtle.importKey("raw", decodeSigningSecret(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);

/** HMAC-SHA256 of `${webhookId}.${timestamp}.${body}`. */
export async function hmac(key: CryptoKey, webhookId: string, timestamp: number | string, body: string | Uint8Array): Promise<Uint8Array> {
  const prefix = encoder.encode(`${webhookId}.${timestamp}.`);
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const content = new Uint8Array(prefix.length + bytes.length);
  content.set(prefix);
  content.set(bytes, prefix.length);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, content));
}

export const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

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
 * tried and compared in constant time, as canonical base64; other versions are ignored. Returns false for any missing,
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
  // Compared as canonical base64 text, as the reference library does: atob would also take a
  // value without padding, with other trailing bits, or with whitespace inside.
  const expected = encoder.encode(base64(await hmac(key, id, timestamp, input.body)));
  let valid = false;
  for (const signature of signatures.split(" ")) {
    const [version, value] = signature.split(",", 2);
    if (version !== "v1" || value === undefined) continue;
    valid ||= timingSafeEqual(encoder.encode(value), expected);
  }
  return valid;
}

