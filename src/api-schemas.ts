import * as z from "zod";
import { messageProblem, nameProblem } from "./engine/checks.ts";
import { missedPolicies, type Message } from "./types.ts";

/*
 * The request schemas of the HTTP API: the server validates with them (src/http), and the client
 * (src/client) infers its request types from them (type-only, so no zod in its bundle). A leaf:
 * zod, the engine's name and message rules (src/engine/checks.ts, itself a leaf) and the types.
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

/** `GET /events` */
export const eventsQuery = z.object({
  topic: name("topic").default("default"),
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

export type { MessageView, ScheduleView, TopicPolicy, TopicView } from "./engine/api.ts";
export type { ErrorCode, ErrorIssue } from "./errors.ts";
export type { Message, MissedPolicy } from "./types.ts";
