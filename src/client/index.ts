import { createParser } from "eventsource-parser";
import type * as z from "zod";
import type * as api from "../api-schemas.ts";

/*
 * The typed HTTP client of pitstop. Web-standard APIs only (fetch, streams, AbortSignal), so it
 * runs in browsers, Workers, Deno and Node. Request types are inferred from the server's route
 * schemas (type-only imports: the server validates, the bundle carries no zod).
 */

export type { ErrorCode, ErrorIssue, Message, MessageView, MissedPolicy, ScheduleView, TopicPolicy, TopicView } from "../api-schemas.ts";

/** The body of `POST /messages`: a message and its schedule. */
export type ScheduleRequest = z.input<typeof api.storeBody>;
/** One item of `storeMany`: the body of `POST /messages`, as `POST /messages/batch` takes it. */
export type StoreManyItem = z.input<typeof api.batchStoreBody>["messages"][number];
/**
 * One result of `storeMany`, in the order of the items: stored (`status` 201 created, 200
 * replaced), or refused alone with the server's error (`index` is the item's in the list given).
 */
export type StoreManyResult = { id: string; status: 200 | 201 } | { error: api.ErrorCode; message: string; index: number; issues?: api.ErrorIssue[] };

/** Most items of one `POST /messages/batch`; typed as the server's constant, so the two cannot differ. */
const BATCH: typeof api.MAX_BATCH_MESSAGES = 1000;

/** `GET /messages` filters and paging. */
export type ListRequest = Partial<z.output<typeof api.listQuery>>;
/** What `nack` may say besides the token. */
export type NackRequest = Omit<z.input<typeof api.nackBody>, "token">;
/** A topic policy to set (any subset). */
export type PolicyRequest = z.input<typeof api.policyBody>;
/** One ack of `ackMany`. */
export type AckRequest = z.input<typeof api.batchAckBody>["acks"][number];
/** A duration: ISO-8601 (`"PT30S"`) or milliseconds. */
export type Duration = NonNullable<z.input<typeof api.extendBody>["by"]>;
/** What `ticket` asks for: a topic (default `"default"`) and a ttl (default 60 s, at most 5 minutes). */
export type TicketRequest = z.input<typeof api.ticketBody>;
/** A stream ticket: `GET /events?ticket=` opens its topic's stream without the token, until `expiresAt`. */
export type Ticket = z.output<typeof api.ticketResponse>;
/** A time: an ISO-8601 timestamp with an offset, or epoch milliseconds. */
export type Time = NonNullable<z.input<typeof api.redriveBody>["at"]>;

/** The answer to `schedule`: where and when the message will be emitted. */
export type Scheduled = api.ScheduleView & { /** True when a message with this id was replaced (HTTP 200, not 201). */ replaced: boolean };

/** One page of `list`. */
export interface ListPage {
  items: api.MessageView[];
  /** Cursor of the next page, `null` after the last one. */
  next: string | null;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Where pitstop answers, e.g. `"https://pitstop.example.com"`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>` on every request (SSE included, unless `tickets`). */
  token?: string;
  /**
   * `listen` opens each stream with a fresh ticket from `POST /tickets` instead of the
   * Authorization header, so the token is never sent on a long-lived connection and a
   * cross-origin stream needs no CORS preflight. @default true in a browser (where `document`
   * exists) when `token` is set
   */
  tickets?: boolean;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
}

/** Options of {@link PitstopClient.listen}. */
export interface ListenOptions {
  /** @default "default" */
  topic?: string;
  /** Most unacked deliveries the server sends this stream. @default 1000 (the server's) */
  prefetch?: number;
  /** Consumer name recorded as `lockedBy`. @default one the server generates per connection */
  consumer?: string;
  /** Stops listening when aborted. */
  signal?: AbortSignal;
  /** Reconnect delays: `minMs` doubling up to `maxMs` (with jitter). @default { minMs: 250, maxMs: 10000 } */
  reconnect?: { minMs?: number; maxMs?: number };
}

/** One message received over `listen`. */
export interface ClientDelivery {
  id: string;
  message: api.Message & { id: string };
  /** Claims of this occurrence so far, this one included. */
  attempt: number;
  /** Lock token; `ack`, `nack` and `extend` send it. */
  token: string;
  /** The occurrence's scheduled time (ISO-8601). */
  at: string;
  /** When the lock expires (ISO-8601); `extend` moves it. */
  deadline: string;
  /** Acks it; acks that come together go out in one `POST /acks`. */
  ack(): Promise<void>;
  nack(options?: NackRequest): Promise<void>;
  /** Keeps the lock `by` longer from now (default the server's lock time); updates `deadline`. */
  extend(by?: Duration): Promise<string>;
}

/** What `listen` returns: an async iterable of deliveries. Breaking out of `for await` closes it. */
export interface Listening extends AsyncIterableIterator<ClientDelivery> {
  /** The consumer name of the current connection (from its `: connected as` comment). */
  readonly consumer: string | undefined;
  /** Times the stream was (re)opened. */
  readonly connections: number;
  close(): void;
}

/** Every failure of a client call: the server's error `code`, HTTP `status` and message. */
export class PitstopClientError extends Error {
  override name = "PitstopClientError";
  constructor(
    /** The server's code (`not_found`, `lock_lost`, …), or `network_error` / `bad_response` (status 0 for a network error). */
    readonly code: api.ErrorCode | "network_error" | "bad_response",
    readonly status: number,
    message: string,
    /** For `invalid_request`: each `{ path, message }`. */
    readonly issues?: api.ErrorIssue[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Creates a client of the pitstop HTTP API at `baseUrl`. */
export function createClient(options: ClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, "");
  // Called through an arrow: a browser's fetch refuses to run detached from `window`.
  const fetchFn = options.fetch ?? ((input: string, init?: RequestInit) => fetch(input, init));
  const auth: Record<string, string> = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  const path = (...parts: string[]) => parts.map(encodeURIComponent).join("/");
  const tickets = options.token !== undefined && (options.tickets ?? typeof document !== "undefined");

  /** Sends one request; a status outside 2xx (and `allow`) is thrown as a {@link PitstopClientError}. */
  async function send(method: string, url: string, body?: unknown, allow?: number): Promise<{ status: number; json: any }> {
    let response: Response;
    try {
      response = await fetchFn(base + url, {
        method,
        headers: body === undefined ? auth : { ...auth, "content-type": "application/json" },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new PitstopClientError("network_error", 0, `${method} ${url} failed: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
    }
    const text = await response.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch (error) {
      throw new PitstopClientError("bad_response", response.status, `${method} ${url} answered HTTP ${response.status} with a body that is not JSON`, undefined, { cause: error });
    }
    if (!response.ok && response.status !== allow) throw new PitstopClientError(json?.error ?? "bad_response", response.status, json?.message ?? `HTTP ${response.status}`, json?.issues);
    return { status: response.status, json };
  }
  const call = async <T>(method: string, url: string, body?: unknown): Promise<T> => (await send(method, url, body)).json as T;
  /** A GET whose 404 means "none": `null`. */
  const find = async <T>(url: string): Promise<T | null> => {
    const { status, json } = await send("GET", url, undefined, 404);
    return status === 404 ? null : (json as T);
  };

  const acks = ackBatcher(
    (id, token) => call("POST", `/messages/${path(id)}/ack`, { token }),
    (batch) => call<AckResult>("POST", "/acks", { acks: batch }),
  );

  const client = {
    /** Stores (or, with an existing id, replaces) a message with its schedule. */
    async schedule(request: ScheduleRequest): Promise<Scheduled> {
      const { status, json } = await send("POST", "/messages", request);
      return { ...(json as api.ScheduleView), replaced: status === 200 };
    },
    /**
     * Stores many messages with `POST /messages/batch`, 1,000 per request (one request after
     * another, so a repeated id ends as its last item). A bad item is refused alone, in its result;
     * a failed request throws, after the requests before it stored their items.
     */
    async storeMany(items: StoreManyItem[]): Promise<StoreManyResult[]> {
      const results: StoreManyResult[] = [];
      for (let start = 0; start < items.length; start += BATCH) {
        const answer = await call<{ results: StoreManyResult[] }>("POST", "/messages/batch", { messages: items.slice(start, start + BATCH) });
        for (const result of answer.results) results.push("index" in result ? { ...result, index: result.index + start } : result);
      }
      return results;
    },
    /** The message with its schedule and state, or `null` when there is none. */
    get: (id: string) => find<api.MessageView>(`/messages/${path(id)}`),
    /** Deletes a message whatever its state; false when there was none. */
    remove: async (id: string) => (await send("DELETE", `/messages/${path(id)}`, undefined, 404)).status !== 404,
    /** One page of a topic's stored messages (or, with `webhooks`, of the callback messages). */
    list: (request: ListRequest = {}) => {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(request)) if (value !== undefined) query.set(key, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
      const qs = query.toString();
      return call<ListPage>("GET", `/messages${qs ? `?${qs}` : ""}`);
    },
    ack: async (id: string, token: string) => void (await call("POST", `/messages/${path(id)}/ack`, { token })),
    /** Acks many in one `POST /acks`; what could not be acked is listed in `failed`. */
    ackMany: (list: AckRequest[]) => call<AckResult>("POST", "/acks", { acks: list }),
    nack: async (id: string, token: string, request: NackRequest = {}) => void (await call("POST", `/messages/${path(id)}/nack`, { token, ...request })),
    /** Moves the lock's expiry to now + `by` (default the server's lock time); answers the new expiry (ISO-8601). */
    extend: async (id: string, token: string, by?: Duration) => (await call<{ lockedUntil: string }>("POST", `/messages/${path(id)}/extend`, by === undefined ? { token } : { token, by })).lockedUntil,
    /** Makes a dead message pending again, due at `at` (default now). */
    redrive: (id: string, at?: Time) => call<api.MessageView>("POST", `/messages/${path(id)}/redrive`, at === undefined ? {} : { at }),
    topics: {
      list: async () => (await call<{ items: api.TopicView[] }>("GET", "/topics")).items,
      /** A topic's policy and counts, or `null` when it has no messages and no policy. */
      get: (name: string) => find<api.TopicView>(`/topics/${path(name)}`),
      /** Sets any subset of the topic's policy; answers the whole policy. */
      setPolicy: (name: string, policy: PolicyRequest) => call<api.TopicPolicy>("PUT", `/topics/${path(name)}`, policy),
      resetPolicy: async (name: string) => void (await call("DELETE", `/topics/${path(name)}/policy`)),
      /** Redrives every dead message of the topic; answers how many. */
      redrive: async (name: string) => (await call<{ redriven: number }>("POST", `/topics/${path(name)}/redrive`)).redriven,
      /** Deletes the topic's dead messages; answers how many. */
      purgeDead: async (name: string) => (await call<{ removed: number }>("DELETE", `/topics/${path(name)}/dead`)).removed,
    },
    /** A stream ticket for a topic, for `GET /events?ticket=` (an `EventSource` cannot send headers). */
    ticket: (request: TicketRequest = {}) => call<Ticket>("POST", "/tickets", request),
    /**
     * Listens for due messages of a topic over SSE (with the token in the header, or with a
     * ticket: see `tickets`), reconnecting with backoff after network errors and ended streams. A
     * 4xx answer (bad token, bad options) is not retried: the iterator throws it.
     */
    listen(listenOptions: ListenOptions = {}): Listening {
      const topic = listenOptions.topic ?? "default";
      const query = new URLSearchParams({ topic });
      if (listenOptions.prefetch !== undefined) query.set("prefetch", String(listenOptions.prefetch));
      if (listenOptions.consumer !== undefined) query.set("consumer", listenOptions.consumer);
      const url = `${base}/events?${query}`;
      const connect = tickets ? async () => ({ url: `${url}&ticket=${encodeURIComponent((await client.ticket({ topic })).ticket)}`, headers: {} }) : async () => ({ url, headers: auth });
      return openStream(connect, listenOptions, fetchFn, (frame) => {
        const delivery: ClientDelivery = {
          ...frame,
          ack: () => acks(frame.id, frame.token),
          nack: (request) => client.nack(frame.id, frame.token, request),
          extend: async (by) => (delivery.deadline = await client.extend(frame.id, frame.token, by)),
        };
        return delivery;
      });
    },
  };
  /** `store` is `schedule` under the original pitstop's name. */
  return { ...client, store: client.schedule };
}

/** The client {@link createClient} makes. */
export type PitstopClient = ReturnType<typeof createClient>;

/** The answer of `POST /acks`. */
export interface AckResult {
  acked: number;
  failed: { id: string; error: api.ErrorCode }[];
}

/** A delivery frame's data. */
type Frame = Omit<ClientDelivery, "ack" | "nack" | "extend">;

/**
 * Sends an ack at once when none is in flight; acks that arrive meanwhile wait and go out
 * together in one `POST /acks` (or alone, when only one waited).
 */
function ackBatcher(one: (id: string, token: string) => Promise<unknown>, many: (batch: AckRequest[]) => Promise<AckResult>) {
  const waiting: { id: string; token: string; resolve(): void; reject(error: unknown): void }[] = [];
  let inFlight = false;
  async function flush() {
    if (inFlight || waiting.length === 0) return;
    inFlight = true;
    const batch = waiting.splice(0, 10_000);
    try {
      if (batch.length === 1) {
        await one(batch[0]!.id, batch[0]!.token);
        batch[0]!.resolve();
      } else {
        const { failed } = await many(batch.map(({ id, token }) => ({ id, token })));
        const errors = new Map(failed.map((f) => [f.id, f.error]));
        for (const ack of batch) {
          const code = errors.get(ack.id);
          if (code === undefined) ack.resolve();
          else ack.reject(new PitstopClientError(code, code === "not_found" ? 404 : 409, code === "not_found" ? `No message with id "${ack.id}".` : `The lock of "${ack.id}" was lost (expired, or the message was replaced).`));
        }
      }
    } catch (error) {
      for (const ack of batch) ack.reject(error);
    } finally {
      inFlight = false;
      void flush();
    }
  }
  return (id: string, token: string) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ id, token, resolve, reject });
      void flush();
    });
}

/** The SSE loop of `listen`: connect, parse frames, reconnect with backoff until closed. */
function openStream(
  connect: () => Promise<{ url: string; headers: Record<string, string> }>,
  options: ListenOptions,
  fetchFn: NonNullable<ClientOptions["fetch"]>,
  delivery: (frame: Frame) => ClientDelivery,
): Listening {
  const minMs = options.reconnect?.minMs ?? 250;
  const maxMs = options.reconnect?.maxMs ?? 10_000;
  const controller = new AbortController();
  const buffer: ClientDelivery[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  let closed = false;
  let consumer: string | undefined;
  let connections = 0;

  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const close = () => {
    if (closed) return;
    closed = true;
    controller.abort();
    notify();
  };
  if (options.signal?.aborted) close();
  options.signal?.addEventListener("abort", close, { once: true });

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      controller.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });

  void (async () => {
    let failures = 0;
    while (!closed) {
      try {
        const { url, headers } = await connect();
        const response = await fetchFn(url, { headers: { ...headers, accept: "text/event-stream" }, signal: controller.signal });
        if (response.status >= 400 && response.status < 500) {
          const json: any = await response.json().catch(() => undefined);
          throw new PitstopClientError(json?.error ?? "bad_response", response.status, json?.message ?? `GET /events answered HTTP ${response.status}`, json?.issues);
        }
        if (response.ok && response.body) {
          connections++;
          failures = 0;
          const parser = createParser({
            onEvent(event) {
              if (event.event !== "message") return;
              buffer.push(delivery(JSON.parse(event.data) as Frame));
              notify();
            },
            onComment(comment) {
              const name = /^\s*connected as (.+)$/.exec(comment)?.[1];
              if (name) consumer = name;
            },
          });
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            parser.feed(value);
          }
        } else await response.body?.cancel();
      } catch (error) {
        if (closed) break;
        // A refusal is final; an expired ticket (a slow reconnect) is not: the next one is fresh.
        if (error instanceof PitstopClientError && error.status >= 400 && error.status < 500 && error.code !== "ticket_expired") {
          failure = error;
          closed = true;
          notify();
          break;
        }
      }
      if (closed) break;
      // Ended or failed: back off (doubling, with jitter) before reconnecting.
      const delay = Math.min(maxMs, minMs * 2 ** failures++);
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
  })();

  const listening: Listening = {
    get consumer() {
      return consumer;
    },
    get connections() {
      return connections;
    },
    close,
    async next(): Promise<IteratorResult<ClientDelivery>> {
      for (;;) {
        const next = buffer.shift();
        if (next) return { value: next, done: false };
        if (failure) {
          const error = failure;
          failure = undefined;
          throw error;
        }
        if (closed) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return(): Promise<IteratorResult<ClientDelivery>> {
      close();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return listening;
}
