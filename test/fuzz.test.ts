import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import type { Store } from "../src/types.ts";
import { jsonClient, viaApp, type Transport } from "./support/http.ts";

/**
 * Property-based fuzzing of the HTTP API, in-process. Bad input of every kind must get a 4xx with
 * a JSON error of a stable code and change nothing stored; valid-shaped input must never get a
 * 5xx. fast-check prints the seed and the shrunk counterexample of a failure; FUZZ_SEED=<seed>
 * replays one, FUZZ_RUNS=<n> runs each property n times (default 400).
 */

const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const MAX_BODY = 256 * 1024;
const TOKEN = "s3cr3t-token";
const DAY = 86_400_000;
const SEEDS = ["seed-once", "seed-recurring", "seed-locked"];
/** Stands for seed-locked's lock token in generated bodies; each run's fixture puts the real one in. */
const LOCK_TOKEN = "<lock token>";

/** The error codes a client may get for its own mistakes (README, "Errors"), with their statuses. */
const CLIENT_ERRORS: Record<string, number> = {
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  lock_lost: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
};

const run = <T extends [unknown, ...unknown[]]>(property: fc.IAsyncPropertyWithHooks<T>) => fc.assert(property, { numRuns: NUM_RUNS, seed: SEED });

/**
 * An app on a memory store seeded with a one-shot, a recurring and a claimed (locked) message.
 * The (a, b) properties build one per run, so a failing run cannot leak into the next one or into
 * shrinking.
 * `effects` lists every store write that changed something (a put, a remove that found its
 * record, a settle that applied, a claim that locked), so a rejected request must leave it empty.
 */
async function fixture(options: { token?: string } = {}) {
  const inner = memoryStore();
  const effects: string[] = [];
  const store: Store = {
    ...inner,
    name: inner.name,
    get: (id) => inner.get(id),
    nextDueAt: (lane, ordered) => inner.nextDueAt(lane, ordered),
    async move(id, from, to) {
      const moved = await inner.move(id, from, to);
      if (moved) effects.push(`move ${id}`);
      return moved;
    },
    async setPolicy(topic, policy) {
      effects.push(`policy ${topic}`);
      return inner.setPolicy(topic, policy);
    },
    async put(record) {
      effects.push(`put ${record.id}`);
      return inner.put(record);
    },
    async putMany(records) {
      for (const record of records) effects.push(`put ${record.id}`);
      return inner.putMany!(records);
    },
    async remove(id) {
      const existed = await inner.remove(id);
      if (existed) effects.push(`remove ${id}`);
      return existed;
    },
    async settle(ops) {
      const results = await inner.settle(ops);
      ops.forEach((op, i) => results[i] === "ok" && effects.push(`settle ${op.id} ${op.action.kind}`));
      return results;
    },
    async claim(request) {
      const claimed = await inner.claim(request);
      for (const r of claimed) effects.push(`claim ${r.id}`);
      return claimed;
    },
  };
  const pitstop = createPitstop({ store, lockTime: "PT10M", log: () => {} });
  const app = createApp(pitstop, { token: options.token, maxBodyBytes: MAX_BODY, log: () => {} });
  const send = viaApp(app);
  const call = jsonClient("", { transport: send, headers: options.token ? { authorization: `Bearer ${options.token}` } : {} });
  const now = Date.now();
  await call("POST", "/messages", { message: { id: "seed-once", n: 1 }, at: now + DAY });
  await call("POST", "/messages", { message: { id: "seed-recurring" }, at: now - DAY, interval: "PT1H", end: now + 7 * DAY, topic: "reports" });
  await call("POST", "/messages", { message: { id: "seed-locked", nested: { a: [1, 2] } }, topic: "locked" });
  const [locked] = await pitstop.claim({ topic: "locked", limit: 1 });
  // `upcoming` is computed from the clock, not stored: it moves on by itself as time passes.
  const withoutUpcoming = ({ status, json }: { status: number; json: Record<string, unknown> }) => {
    const { upcoming: _upcoming, ...view } = json;
    return { status, json: view };
  };
  const snapshot = async () => (await Promise.all(SEEDS.map((id) => call("GET", `/messages/${id}`)))).map(withoutUpcoming);
  const before = await snapshot();
  expect(before.map((r) => [r.status, r.json.locked])).toEqual([[200, false], [200, false], [200, true]]);
  effects.length = 0;
  return {
    pitstop,
    send,
    call,
    /** The token of seed-locked's lock. */
    token: locked.token,
    effects,
    /** Nothing stored changed since seeding. */
    async expectUnchanged() {
      expect(effects).toEqual([]);
      expect(await snapshot()).toEqual(before);
    },
  };
}

/** One request as the fuzzer sends it: any method, raw path, raw headers, raw body. */
interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const sendRaw = (f: { send: Transport; token: string }, r: RawRequest) =>
  f.send(r.path, { method: r.method, headers: r.headers, body: noBody(r.method) ? undefined : r.body?.replaceAll(LOCK_TOKEN, f.token) });
const noBody = (method: string) => ["GET", "HEAD"].includes(method.toUpperCase());

/** A refusal: a 4xx whose JSON body is `{error, message, issues?}` with a stable code matching the status (HEAD: no body). */
function expectRefusal(answer: { status: number; text: string }, method: string): void {
  expect(answer.status).toBeGreaterThanOrEqual(400);
  expect(answer.status).toBeLessThan(500);
  if (method.toUpperCase() === "HEAD") return expect(answer.text).toBe("");
  const body = JSON.parse(answer.text);
  expect(Object.keys(body).filter((k) => !["error", "message", "issues"].includes(k))).toEqual([]);
  expect(typeof body.message).toBe("string");
  expect(Object.keys(CLIENT_ERRORS)).toContain(body.error);
  expect(answer.status).toBe(CLIENT_ERRORS[body.error]);
  if (body.issues !== undefined) {
    expect(Array.isArray(body.issues)).toBe(true);
    for (const issue of body.issues) expect(issue).toEqual({ path: expect.any(Array), message: expect.any(String) });
  }
}

/** A JSON answer that is not a server error; a 4xx is then a well-formed refusal. */
function expectNoServerError(answer: { status: number; text: string }, method: string): void {
  expect(answer.status).toBeLessThan(500);
  if (answer.status >= 400) expectRefusal(answer, method);
}

// ---- Building blocks --------------------------------------------------------------------------

const char = (min: number, max: number) => fc.integer({ min, max }).map((c) => String.fromCharCode(c));
const controlChar = fc.oneof(char(0x00, 0x1f), char(0x7f, 0x9f));
const loneSurrogate = char(0xd800, 0xdfff);
/** Printable ASCII around one bad character, so it cannot pair up into a valid surrogate pair. */
const around = (bad: fc.Arbitrary<string>) => fc.tuple(fc.string({ maxLength: 4 }), bad, fc.string({ maxLength: 4 })).map((parts) => parts.join(""));
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));
const notAnObject = fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.boolean(), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }));

/** Strings the id and topic rule refuses: empty, ".", "..", too long, control characters, lone surrogates. */
const invalidName = fc.oneof(
  fc.constantFrom("", ".", ".."),
  fc.string({ minLength: 257, maxLength: 300 }),
  around(controlChar),
  around(loneSurrogate),
);
/** Ids for URL paths: refused ones, and odd but valid ones nothing is stored under. */
const oddPathId = fc
  .oneof(
    invalidName,
    fc.constantFrom("%", "%ZZ", "%00", "%2E", "%2e%2E", "%C2%85", "%ED%A0%80", "%F0%9F", "a%2Fb", "%20", " ", "a b", "?x=1", "#frag", "\uFFFF", "x".repeat(300)),
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.webSegment(),
  )
  .filter((id) => !/seed/i.test(id));
const okId = fc.string({ minLength: 1, maxLength: 24 }).filter((id) => id !== "." && id !== ".." && !/seed/i.test(id));
const okToken = fc.string({ minLength: 1, maxLength: 40 });
const unknownKey = (known: string[]) => fc.oneof(fc.constantFrom("__proto__", "constructor", "toString", "Message", "id"), fc.string({ maxLength: 10 })).filter((k) => !known.includes(k));

const badTime = fc.oneof(
  fc.constantFrom(
    "", "now", "2026-01-01", "2026-01-01T10:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
    "2026-01-01T10:60:00Z", "2026-01-01T10:00:00+24:00", "2026-01-01T10:00:00+02", "+02026-01-01T00:00:00Z", " 2026-01-01T00:00:00Z",
    "2026-01-01t10:00:00z", "275760-09-13T00:00:00.001Z", "1e3", "0x10", "1700000000000",
  ),
  fc.constantFrom(1.5, -0.5, 8.64e15 + 1, -8.64e15 - 1, 1e300, -Number.MAX_VALUE, true, false, null, [], {}),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  fc.string().filter((s) => !/^\d{4}-/.test(s)),
);
const badDurationCommon = [
  "", "P", "PT", "P1DT", "1 hour", "PT1H ", "pt1h", "P1.5D", "PT1.2345S", "-PT1S", "P-1D", "P1H", "PT1D", "P99999999999Y", "PT9999999999999999H",
  -1, 1.5, -0.5, 1e300, 8.64e15 + 1, true, null, [], {},
];
const badInterval = fc.oneof(fc.constantFrom(...badDurationCommon, "PT0S", "P0D", 0), fc.string().filter((s) => !s.startsWith("P")));
const badRetryIn = fc.oneof(fc.constantFrom(...badDurationCommon, "P1Y", "P1M", "P1Y2M"), fc.string().filter((s) => !s.startsWith("P")));
const badCallback = fc.oneof(
  fc.constantFrom(
    "", "example.com/x", "ftp://example.com/x", "http://", "javascript:alert(1)", "file:///etc/passwd", "http://127.0.0.1/x", "http://localhost:8787/x",
    "http://10.0.0.1/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data", "http://metadata.google.internal/", `https://example.com/${"a".repeat(2048)}`,
  ),
  notAString,
);

/** A message nested `depth` levels deep (the message object itself is level 1), as raw JSON. */
const deepMessageBody = (depth: number) => `{"message":{"id":"deep","a":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}}`;

const okMessage = fc.tuple(fc.constantFrom("fuzz-a", "fuzz-b"), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })).map(([id, rest]) => ({ ...rest, id }));
const badMessage = fc.oneof(
  notAnObject,
  fc.record({ id: fc.oneof(invalidName, notAString) }),
  fc.tuple(okMessage, fc.oneof(invalidName, notAString)).map(([m, id]) => ({ ...m, id })),
);

/** JSON text that no body route accepts: not JSON, or JSON without any of the required keys. */
const badJsonText = fc.oneof(
  fc.constantFrom(
    "", "{", "}", "[", "nul", "NaN", "undefined", "{'message':{}}", '{"message":{}} x', '{"message":{},}',
    '{"message":{"id":"dup"},"message":5}', '{"message":{},"at":1e400}', '{"message":{},"interval":-1e400}', '{"token":"t","retryIn":1e400}',
  ),
  fc.string().filter((s) => {
    try {
      const v = JSON.parse(s);
      return typeof v !== "object" || v === null || !["message", "token", "acks"].some((k) => k in v);
    } catch {
      return true;
    }
  }),
  fc.jsonValue().filter((v) => typeof v !== "object" || v === null || !["message", "token", "acks"].some((k) => k in v)).map((v) => JSON.stringify(v)),
);

const json = (value: unknown) => JSON.stringify(value);

const badStoreBody = fc.oneof(
  fc.record({ message: badMessage }).map(json),
  fc.record({ message: okMessage, at: badTime }).map(json),
  fc.record({ message: okMessage, interval: badInterval }).map(json),
  fc.record({ message: okMessage, interval: fc.constant("PT1H"), end: badTime }).map(json),
  fc.record({ message: okMessage, end: fc.integer({ min: 0, max: 8.64e15 }) }).map(json),
  fc.tuple(okMessage, fc.integer({ min: -8.64e15 + 1, max: 8.64e15 }), fc.integer({ min: 1, max: 1e9 })).map(([message, at, before]) => json({ message, at, interval: "PT1M", end: Math.max(at - before, -8.64e15) })),
  fc.record({ message: okMessage, at: fc.constant(8.64e15 - 1000), interval: fc.constantFrom("P1Y", "PT1H", "P1M") }).map(json),
  fc.record({ message: okMessage, topic: fc.oneof(invalidName, notAString) }).map(json),
  fc.record({ message: okMessage, callback: badCallback }).map(json),
  fc.tuple(okMessage, unknownKey(["message", "at", "interval", "end", "topic", "callback"]), fc.jsonValue({ maxDepth: 2 })).map(([message, key, value]) => json({ message, [key]: value })),
  fc.oneof(fc.constantFrom(65, 66, 100), fc.integer({ min: 65, max: 20_000 })).map(deepMessageBody),
  badJsonText,
);

const badToken = fc.oneof(fc.constant(""), fc.string({ minLength: 257, maxLength: 300 }), notAString);
const badAckBody = fc.oneof(
  fc.record({ token: badToken }).map(json),
  fc.tuple(okToken, unknownKey(["token"]), fc.jsonValue({ maxDepth: 1 })).map(([token, key, value]) => json({ token, [key]: value })),
  badJsonText,
);
const badNackBody = fc.oneof(
  badAckBody,
  fc.tuple(okToken, unknownKey(["token", "error", "retryIn"]), fc.jsonValue({ maxDepth: 1 })).map(([token, key, value]) => json({ token, [key]: value })),
  fc.record({ token: okToken, error: fc.oneof(notAString, fc.string({ minLength: 4097, maxLength: 4200 })) }).map(json),
  fc.record({ token: okToken, retryIn: badRetryIn }).map(json),
);
const okAckItem = fc.record({ id: okId, token: okToken });
const badAckItem = fc.oneof(
  notAnObject,
  fc.record({ id: fc.oneof(invalidName, notAString), token: okToken }),
  fc.record({ id: okId, token: badToken }),
  fc.record({ id: okId }),
  fc.record({ token: okToken }),
  fc.tuple(okAckItem, unknownKey(["id", "token"]), fc.jsonValue({ maxDepth: 1 })).map(([item, key, value]) => ({ ...item, [key]: value })),
);
const badBatchBody = fc.oneof(
  fc.constantFrom({ acks: [] }, { acks: null }, { acks: {} }, { acks: "x" }, { acks: [{}] }).map(json),
  fc.tuple(fc.array(okAckItem, { maxLength: 3 }), badAckItem, fc.array(okAckItem, { maxLength: 3 })).map(([a, bad, b]) => json({ acks: [...a, bad, ...b] })),
  fc.tuple(fc.array(okAckItem, { minLength: 1, maxLength: 2 }), unknownKey(["acks"]), fc.jsonValue({ maxDepth: 1 })).map(([acks, key, value]) => json({ acks, [key]: value })),
  // One over the limit of 10,000, small enough to stay under MAX_BODY.
  fc.constant(json({ acks: Array.from({ length: 10_001 }, (_, i) => ({ id: String(i), token: "t" })) })),
  badJsonText,
);

/** The route a raw path reaches: slashes collapsed, percent-decoding undone where it is valid. */
function routeOf(path: string): string {
  const pathname = new URL(`http://x${path}`).pathname.replace(/\/+/g, "/");
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** A path any method may be sent to, never one that answers 2xx for every method (/health, /events without a bad query). */
const badEventsQuery = fc.oneof(
  fc.constantFrom("prefetch=0", "prefetch=-1", "prefetch=1.5", "prefetch=abc", "prefetch=100001", "prefetch=1e400", "prefetch=%ZZ", "prefetch=", "topic=", "topic=.", "topic=..", "topic=%00", "topic=%C2%85", `topic=${"t".repeat(257)}`),
  fc.tuple(controlChar, okId).map(([c, id]) => `topic=${encodeURIComponent(id + c)}`),
);
const anyPath = fc
  .oneof(
    oddPathId.map((id) => `/messages/${id}`),
    fc.tuple(oddPathId, fc.constantFrom("ack", "nack", "", "x", "ack/", "ACK")).map(([id, tail]) => `/messages/${id}/${tail}`),
    fc.constantFrom("/", "/messages", "/messages/", "/acks", "/acks/", "/health/x", "/events/x", "//messages", "/MESSAGES/x", "/messages/%2E%2E/ack", "/messages/./ack"),
    badEventsQuery.map((query) => `/events?${query}`),
    fc.webPath(),
  )
  // Routes that answer 2xx to a plain GET (listings, health, a stream) are left out, and so is the
  // dashboard, which answers HTML (test/ui.test.ts covers it).
  .filter((path) => !["/health", "/messages", "/topics"].includes(routeOf(path)) && (routeOf(path) !== "/events" || path.includes("?")) && !/^\/ui(\/|$)/.test(routeOf(path)));
const anyMethod = fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "Post", "PURGE", "M-SEARCH");
const JSON_HEADERS = { "content-type": "application/json" };

// ---- Properties -------------------------------------------------------------------------------

describe("HTTP API fuzzing (fast-check, in-process)", () => {
  it("(a, b) random methods and paths, odd ids: a 4xx JSON error, nothing stored changes", async () => {
    await run(
      fc.asyncProperty(anyMethod, anyPath, fc.option(badJsonText, { nil: undefined }), async (method, path, body) => {
        const f = await fixture();
        // GET /messages/<id> with an odd but valid id is a plain miss: a 404 too.
        expectRefusal(await sendRaw(f, { method, path, headers: JSON_HEADERS, body }), method);
        await f.expectUnchanged();
      }),
    );
  });

  it("(a, b) bad bodies on every body route: 400/404/409, nothing stored changes", async () => {
    // Path ids as sent: odd ones raw, plain ones encoded, and the seeds.
    const target = fc.oneof(oddPathId, okId.map(encodeURIComponent), fc.constantFrom(...SEEDS));
    const request = fc.oneof(
      badStoreBody.map((body) => ({ path: "/messages", body })),
      fc.tuple(target, badAckBody).map(([id, body]) => ({ path: `/messages/${id}/ack`, body })),
      fc.tuple(target, badNackBody).map(([id, body]) => ({ path: `/messages/${id}/nack`, body })),
      badBatchBody.map((body) => ({ path: "/acks", body })),
      // Well-formed, but the token is not the lock's: lock_lost (or not_found), never a settle.
      fc.tuple(fc.constantFrom(...SEEDS), okToken, fc.constantFrom("ack", "nack")).map(([id, token, verb]) => ({ path: `/messages/${id}/${verb}`, body: json({ token }) })),
      fc.array(fc.record({ id: fc.constantFrom(...SEEDS), token: okToken }), { minLength: 1, maxLength: 3 }).map((acks) => ({ path: "/acks", body: json({ acks }), batch: true })),
    );
    await run(
      fc.asyncProperty(request, async (r) => {
        const f = await fixture();
        const answer = await sendRaw(f, { method: "POST", path: r.path, headers: JSON_HEADERS, body: r.body });
        if ("batch" in r) {
          // A batch of well-formed acks is answered 200, every one of them failed.
          expect(answer.status).toBe(200);
          const { acked, failed } = JSON.parse(answer.text);
          expect(acked).toBe(0);
          expect(failed.map((x: { error: string }) => x.error)).toEqual(JSON.parse(r.body).acks.map(() => "lock_lost"));
        } else {
          expectRefusal(answer, "POST");
        }
        await f.expectUnchanged();
      }),
    );
  });

  it("(a, b) wrong content types and oversized bodies: 415 or 413, nothing stored changes", async () => {
    const validBody = fc.oneof(
      okMessage.map((message) => ({ path: "/messages", body: json({ message }) })),
      fc.constantFrom(...SEEDS).map((id) => ({ path: `/messages/${id}/ack`, body: json({ token: LOCK_TOKEN }) })),
      fc.constantFrom(...SEEDS).map((id) => ({ path: `/messages/${id}/nack`, body: json({ token: LOCK_TOKEN, retryIn: 0 }) })),
      fc.constant({ path: "/acks", body: json({ acks: [{ id: "seed-locked", token: LOCK_TOKEN }] }) }),
    );
    const wrongType = fc.oneof(
      fc.constantFrom(undefined, "", "text/plain", "text/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp", "application/json-patch+json", "application/problem+json", "json", "application/*", "*/*"),
      fc.string({ maxLength: 20 }).filter((t) => !/^application\/json\s*(;|$)/i.test(t)),
    );
    const oversized = fc.integer({ min: 1, max: 4096 }).map((extra) => json({ message: { id: "big", pad: "x".repeat(MAX_BODY + extra) } }));
    const declaredLength = fc.constantFrom(undefined, "0", "1", "-1", "abc", String(MAX_BODY + 1), "99999999999999");
    const request = fc.oneof(
      fc.tuple(validBody, wrongType).map(([r, type]) => ({ ...r, headers: type === undefined ? {} : { "content-type": type } as Record<string, string>, expected: 415 })),
      fc.tuple(oversized, declaredLength).map(([body, length]) => ({ path: "/messages", body, headers: { ...JSON_HEADERS, ...(length && { "content-length": length }) }, expected: 413 })),
    );
    await run(
      fc.asyncProperty(request, async (r) => {
        const f = await fixture();
        const answer = await sendRaw(f, { method: "POST", ...r });
        expectRefusal(answer, "POST");
        expect(answer.status).toBe(r.expected);
        await f.expectUnchanged();
      }),
    );
  });

  it("(a, b) with PITSTOP_TOKEN set, a bad or missing bearer token gets 401 on every route but /health", async () => {
    const badAuthorization = fc.oneof(
      fc.constantFrom(undefined, "", "Bearer", "Bearer ", "Basic czNjcjN0LXRva2Vu", `Token ${TOKEN}`, `Bearer ${TOKEN} extra`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}=`, `Bearer ${TOKEN.toUpperCase()}`, `Bearer${TOKEN}`, TOKEN, "Bearer ü"),
      fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`),
      fc.string({ maxLength: 40 }),
    ).filter((value) => value === undefined || !new RegExp(`^bearer +${TOKEN} *$`, "i").test(value.trim()));
    // Anything, valid requests included: GET /events would stream and POST /messages would store if let through.
    const anyRequest = fc.oneof(
      fc.tuple(anyMethod, anyPath, fc.option(badJsonText, { nil: undefined })).map(([method, path, body]) => ({ method, path, body })),
      okMessage.map((message) => ({ method: "POST", path: "/messages", body: json({ message }) })),
      fc.constantFrom(...SEEDS).map((id) => ({ method: "DELETE", path: `/messages/${id}`, body: undefined })),
      fc.constantFrom(...SEEDS).map((id) => ({ method: "GET", path: `/messages/${id}`, body: undefined })),
      fc.constant({ method: "POST", path: "/messages/seed-locked/ack", body: json({ token: LOCK_TOKEN }) }),
      fc.constant({ method: "GET", path: "/events?topic=locked", body: undefined }),
    );
    await run(
      fc.asyncProperty(anyRequest, badAuthorization, async (r, authorization) => {
        const f = await fixture({ token: TOKEN });
        const headers = { ...JSON_HEADERS, ...(authorization !== undefined && { authorization }) };
        const answer = await sendRaw(f, { ...r, headers });
        expectRefusal(answer, r.method);
        expect(answer.status).toBe(401);
        await f.expectUnchanged();
      }),
    );
  });

  it("(c) valid-shaped requests never get a 5xx, and a stored message reads back as sent", async () => {
    const f = await fixture();
    const two = (n: number) => String(n).padStart(2, "0");
    const isoTime = fc
      .record({ y: fc.integer({ min: 0, max: 9999 }), mo: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 31 }), h: fc.integer({ min: 0, max: 23 }), mi: fc.integer({ min: 0, max: 59 }), s: fc.integer({ min: 0, max: 59 }), ms: fc.integer({ min: 0, max: 999_999 }), offset: fc.constantFrom("Z", "+00:00", "-23:59", "+05:30", "+14:00") })
      .map((t) => `${String(t.y).padStart(4, "0")}-${two(t.mo)}-${two(t.d)}T${two(t.h)}:${two(t.mi)}:${two(t.s)}.${t.ms}${t.offset}`);
    const time = fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.integer({ min: Date.now() - DAY, max: Date.now() + DAY }), isoTime);
    const duration = fc.oneof(
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.record({ Y: fc.nat(20), M: fc.nat(30), W: fc.nat(10), D: fc.nat(400), H: fc.nat(48), Mi: fc.nat(120), S: fc.nat(100_000), f: fc.nat(999) }).map(
        (p) => `P${p.Y}Y${p.M}M${p.W}W${p.D}DT${p.H}H${p.Mi}M${p.S}.${p.f}S`,
      ),
      fc.constantFrom("PT1S", "PT0.001S", "P1M", "P1Y", "P1W", "PT0S", 0),
    );
    const id = fc.oneof(okId, fc.string({ unit: "grapheme", minLength: 1, maxLength: 256 }), fc.constantFrom("%ZZ", "a/b", "a?b#c", "%2E", "x".repeat(256), "…", "😀"));
    const message = fc.tuple(fc.option(id, { nil: undefined }), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 4 }), fc.integer({ min: 1, max: 64 })).map(([messageId, rest, depth]) => {
      let nested: unknown = {};
      for (let level = 2; level < depth; level++) nested = [nested];
      return { ...rest, deep: nested, ...(messageId !== undefined && { id: messageId }) };
    });
    // Mostly schedules that hold together (end after at), some that need not.
    const schedule = fc.oneof(
      fc.constant({}),
      fc.record({ at: time }),
      fc.record({ at: time, interval: duration }),
      fc.tuple(fc.integer({ min: -8.64e15, max: 8.6e15 }), duration, fc.nat(1e12)).map(([at, interval, span]) => ({ at, interval, end: at + span })),
      fc.record({ at: time, interval: duration, end: time }, { requiredKeys: [] }),
    );
    const placement = fc.record({ topic: fc.oneof(okId, fc.constant("default")), callback: fc.constantFrom("https://example.com/hook", "http://93.184.215.14/x") }, { requiredKeys: [] });
    const storeBody = fc.tuple(message, schedule, placement).map(([message, when, where]) => ({ message, ...when, ...where }));
    const target = fc.oneof(okId, fc.constantFrom(...SEEDS));
    const request = fc.oneof(
      storeBody.map((body) => ({ method: "POST", path: "/messages", body })),
      fc.tuple(target, okToken).map(([target, token]) => ({ method: "POST", path: `/messages/${encodeURIComponent(target)}/ack`, body: { token } })),
      fc.tuple(target, okToken, fc.option(fc.string({ maxLength: 100 }), { nil: undefined }), fc.option(duration, { nil: undefined })).map(([target, token, error, retryIn]) => ({
        method: "POST",
        path: `/messages/${encodeURIComponent(target)}/nack`,
        body: { token, ...(error !== undefined && { error }), ...(retryIn !== undefined && { retryIn }) },
      })),
      fc.array(fc.record({ id: target, token: okToken }), { minLength: 1, maxLength: 20 }).map((acks) => ({ method: "POST", path: "/acks", body: { acks } })),
      fc.tuple(fc.constantFrom("GET", "DELETE", "HEAD"), target).map(([method, target]) => ({ method, path: `/messages/${encodeURIComponent(target)}`, body: undefined })),
      fc.constantFrom("GET", "HEAD").map((method) => ({ method, path: "/health", body: undefined })),
    );
    let readBack = 0;
    await run(
      fc.asyncProperty(request, async (r) => {
        const answer = await sendRaw(f, { ...r, headers: JSON_HEADERS, body: r.body === undefined ? undefined : json(r.body) });
        expectNoServerError(answer, r.method);
        if (r.path === "/messages" && answer.status < 300) {
          const sent = JSON.parse(json(r.body)).message;
          const stored = JSON.parse(answer.text);
          const read = await f.call("GET", `/messages/${encodeURIComponent(stored.id)}`);
          expect(read.status).toBe(200);
          expect(read.json.message).toEqual({ ...sent, id: stored.id });
          readBack++;
        }
      }),
    );
    // Not vacuous: some generated messages were stored and read back.
    expect(readBack).toBeGreaterThan(0);
  });

  it("(c) settling a real claim of any valid schedule, with any valid nack, never gets a 5xx", async () => {
    const f = await fixture();
    const now = Date.now();
    const duration = fc.oneof(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom("PT0.001S", "PT1H", "P1M", "P1Y", "P1W", "P1000Y", "P31D", "PT2562047H"));
    const due = fc.oneof(
      fc.record({ at: fc.integer({ min: -8.64e15, max: now }) }),
      fc.record({ at: fc.integer({ min: -8.64e15, max: now }), interval: duration }),
      fc.tuple(fc.integer({ min: -8.64e15, max: now }), duration, fc.integer({ min: 0, max: 8.64e15 })).map(([at, interval, span]) => ({ at, interval, end: Math.min(at + span, 8.64e15) })),
    );
    const settle = fc.oneof(
      fc.constant({ verb: "ack" }),
      fc.record({ verb: fc.constant("nack"), error: fc.string({ maxLength: 4096 }), retryIn: fc.oneof(fc.constantFrom(0, "PT0S"), fc.integer({ min: 0, max: 8.64e15 }), duration) }, { requiredKeys: ["verb"] }),
    );
    let topic = 0;
    let claimed = 0;
    await run(
      fc.asyncProperty(due, settle, async (when, { verb, ...nack }) => {
        const stored = await f.call("POST", "/messages", { message: { id: `claimed-${++topic}` }, topic: `claimed-${topic}`, ...when });
        expectNoServerError({ status: stored.status, text: JSON.stringify(stored.json) }, "POST");
        if (stored.status >= 300) return;
        const [delivery] = await f.pitstop.claim({ topic: `claimed-${topic}`, limit: 1 });
        expect(delivery?.id).toBe(`claimed-${topic}`);
        claimed++;
        const answer = await sendRaw(f, { method: "POST", path: `/messages/${delivery.id}/${verb}`, headers: JSON_HEADERS, body: json({ token: delivery.token, ...nack }) });
        expectNoServerError(answer, "POST");
        if (answer.status >= 400) expect(JSON.parse(answer.text).error).toBe("invalid_request");
        const after = await f.send(`/messages/${delivery.id}`, { method: "GET", headers: {} });
        expectNoServerError(after, "GET");
      }),
    );
    // Not vacuous: some of the generated schedules were stored and settled.
    expect(claimed).toBeGreaterThan(0);
  });
});
