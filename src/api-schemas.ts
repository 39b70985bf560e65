import * as z from "zod";
import { messageProblem, nameProblem } from "./engine/checks.ts";
import { errorCodes } from "./errors.ts";
import { missedPolicies, type Message } from "./types.ts";

/*
 * The schemas of the HTTP API: the server validates requests with them (src/http), the OpenAPI
 * document is generated from them (requests and responses), and the client (src/client) infers
 * its request types from them (type-only, so no zod in its bundle). A leaf: zod, the engine's
 * name and message rules (src/engine/checks.ts, itself a leaf), the error codes and the types.
 */

/** An id or topic, by the engine's rule. */
export const name = (field: string) =>
  z.string({ error: `${field} must be a string` }).superRefine((value, ctx) => {
    const problem = nameProblem(value, field);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** A message: any JSON object with an optional valid `id`, by the engine's rule. */
const message = z.custom<Message>().superRefine((value, ctx) => {
  const problem = messageProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem.message, path: problem.path.slice(1) });
});

const time = z.union([z.string(), z.number()], { error: "must be an ISO-8601 timestamp or epoch milliseconds" });
const duration = z.union([z.string(), z.number()], { error: "must be an ISO-8601 duration or milliseconds" });
const token = z.string().min(1).max(256);

/** When a message is emitted; the engine checks zones, expressions and how they combine. */
const timing = {
  at: time.optional(),
  interval: duration.optional(),
  cron: z.string({ error: "cron must be a string" }).max(256, { error: "cron must be at most 256 characters" }).optional(),
  tz: z.string({ error: "tz must be a string" }).max(64, { error: "tz must be at most 64 characters" }).optional(),
  end: time.optional(),
};

/** `POST /messages` */
export const storeBody = z.strictObject({
  message,
  ...timing,
  missed: z.enum(missedPolicies, { error: `missed must be one of ${missedPolicies.map((p) => `"${p}"`).join(", ")}` }).optional(),
  topic: name("topic").optional(),
  callback: z.string().max(2048).optional(),
  maxAttempts: z.number().optional(),
  lockTime: duration.optional(),
});

/** Most messages one `POST /messages/batch` may hold. */
export const MAX_BATCH_MESSAGES = 1000;

/**
 * `POST /messages/batch`: `{"messages": [ <body of POST /messages>, … ]}`. Only the envelope is
 * checked here; the route checks each item with {@link storeBody} on its own, so a bad item is
 * refused alone. Typed as `storeBody`'s input, for the client.
 */
export const batchStoreBody = z.strictObject({
  messages: z
    .array(z.custom<z.input<typeof storeBody>>(), { error: "messages must be an array of POST /messages bodies" })
    .min(1, { error: "messages must hold at least one message" }),
});

const countError = { error: "count must be an integer from 1 to 100" };

/** `POST /schedules/preview` */
export const previewBody = z.strictObject({
  ...timing,
  count: z.number(countError).int(countError).min(1, countError).max(100, countError).optional(),
});

/** `POST /messages/:id/ack` */
export const ackBody = z.strictObject({ token });

/** `POST /messages/:id/extend` */
export const extendBody = z.strictObject({ token, by: duration.optional() });

/** `POST /messages/:id/nack` */
export const nackBody = z.strictObject({ token, error: z.string().max(4096).optional(), retryIn: duration.optional(), final: z.boolean().optional() });

/** `POST /messages/:id/redrive` */
export const redriveBody = z.strictObject({ at: time.optional() });

/** `PUT /topics/:name`: checked in full by the engine (one source of the rules). */
export const policyBody = z.strictObject({
  maxAttempts: z.number().optional(),
  lockTime: duration.optional(),
  backoff: z.strictObject({ base: duration.optional(), factor: z.number().optional(), max: duration.optional() }).optional(),
  ordered: z.boolean().optional(),
});

/** `/topics/:name` */
export const topicParam = z.object({ name: name("topic") });

/** `POST /acks`: many acks in one request. */
export const batchAckBody = z.strictObject({
  acks: z.array(z.strictObject({ id: name("id"), token })).min(1).max(10_000),
});

/** `/messages/:id` */
export const idParam = z.object({ id: name("id") });

/** `GET /events`; `ticket` stands in for the Authorization header (see `POST /tickets`). */
export const eventsQuery = z.object({
  topic: name("topic").default("default"),
  ticket: z.string().max(2048).optional(),
  consumer: name("consumer").optional(),
  prefetch: z.coerce.number().int().min(1).max(100_000).optional(),
});

/** `GET /messages`: one page of a listing. */
export const listQuery = z.object({
  topic: name("topic").optional(),
  webhooks: z.stringbool({ error: 'webhooks must be "1" or "0"' }).optional(),
  state: z.enum(["pending", "locked", "dead"], { error: 'state must be "pending", "locked" or "dead"' }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(2048).optional(),
});

/** `POST /tickets`: a stream ticket for one topic, valid `ttl` (at most 5 minutes). */
export const ticketBody = z.strictObject({
  topic: name("topic").optional(),
  ttl: duration.optional(),
});

/*
 * Response bodies. They only document the API (the OpenAPI document, checked against real
 * answers in test/openapi.test.ts); the engine's view types stay the source of what is sent.
 */

const isoTime = z.iso.datetime().meta({ id: "Time" });
const int = z.number().int();

/** Every error answer: a stable code, a message, and for `invalid_request` each issue. */
export const errorResponse = z.strictObject({
  error: z.enum(errorCodes),
  message: z.string(),
  issues: z.array(z.strictObject({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })).optional(),
}).meta({ id: "Error" });

const scheduleFields = {
  id: z.string(),
  at: isoTime,
  interval: z.string().optional(),
  cron: z.string().optional(),
  tz: z.string().optional(),
  missed: z.enum(missedPolicies).optional(),
  end: isoTime.optional(),
  topic: z.string(),
  callback: z.string().optional(),
};

/** `POST /messages`: where and when the message will be emitted. */
export const scheduleResponse = z.strictObject(scheduleFields).meta({ id: "Schedule" });

/** `POST /messages/batch`: one result per item, in the items' order. */
export const batchStoreResponse = z.strictObject({
  results: z.array(
    z.union([
      z.strictObject({ id: z.string(), status: z.union([z.literal(201), z.literal(200)]) }),
      z.strictObject({ error: z.enum(errorCodes), message: z.string(), index: int, issues: errorResponse.shape.issues }),
    ]),
  ),
});

/** `GET /messages/:id`: a message with its schedule and state. */
export const messageResponse = z.strictObject({
  ...scheduleFields,
  message: z.looseObject({ id: z.string() }),
  upcoming: z.array(isoTime).optional(),
  attempts: int,
  state: z.enum(["pending", "locked", "dead"]),
  locked: z.boolean(),
  lastError: z.string().optional(),
  maxAttempts: int.optional(),
  lockTime: z.string().optional(),
  failedAt: isoTime.optional(),
  failures: int.optional(),
  lastFailure: z.strictObject({ at: isoTime, failedAt: isoTime, attempts: int, lastError: z.string().optional() }).optional(),
  lockedBy: z.string().optional(),
  lockedUntil: isoTime.optional(),
  lastDelivery: z.strictObject({ at: isoTime, emittedAt: isoTime, lateMs: z.number(), attempt: int, consumer: z.string().optional() }).optional(),
}).meta({ id: "Message" });

/** `GET /messages`: one page, `next` null after the last. */
export const pageResponse = z.strictObject({ items: z.array(messageResponse), next: z.string().nullable() });

/** `POST /schedules/preview` */
export const previewResponse = z.strictObject({ occurrences: z.array(isoTime) });

/** `POST /messages/:id/extend` */
export const extendResponse = z.strictObject({ lockedUntil: isoTime });

/** `POST /acks`: how many were acked, and why the others were not. */
export const batchAckResponse = z.strictObject({ acked: int, failed: z.array(z.strictObject({ id: z.string(), error: z.enum(errorCodes) })) });

/** `PUT /topics/:name`: the whole policy. */
export const policyResponse = z.strictObject({
  maxAttempts: int,
  lockTime: z.string(),
  backoff: z.strictObject({ base: z.string(), factor: z.number(), max: z.string() }),
  ordered: z.boolean(),
}).meta({ id: "Policy" });

/** `GET /topics/:name` */
export const topicResponse = z.strictObject({
  name: z.string(),
  policy: policyResponse,
  counts: z.strictObject({ pending: int, locked: int, dead: int }),
  lateness: z.strictObject({ p50: z.number(), p90: z.number(), p99: z.number(), max: z.number(), count: int }).optional(),
}).meta({ id: "Topic" });

/** `GET /topics` */
export const topicsResponse = z.strictObject({ items: z.array(topicResponse) });

/** `POST /topics/:name/redrive` */
export const redrivenResponse = z.strictObject({ redriven: int });

/** `DELETE /topics/:name/dead` */
export const removedResponse = z.strictObject({ removed: int });

/** `POST /tickets` */
export const ticketResponse = z.strictObject({ ticket: z.string(), expiresAt: isoTime });

/** `GET /health`: 200 when the store answers, 503 with the reason when it does not. */
export const healthResponse = z.union([z.strictObject({ ok: z.literal(true), store: z.string() }), z.strictObject({ ok: z.literal(false), store: z.string(), reason: z.string() })]).meta({ id: "Health" });

export type { MessageView, ScheduleView, TopicPolicy, TopicView } from "./engine/api.ts";
export type { ErrorCode, ErrorIssue } from "./errors.ts";
export type { Message, MissedPolicy } from "./types.ts";
