import * as z from "zod";
import { PitstopError } from "./errors.ts";
import type { Message } from "./types.ts";

// Control characters (C0, DEL, C1) are refused in ids and topics: they break logs, headers and SSE frames.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const nameSchemas = new Map<string, z.ZodType<string>>();

/** A message id or topic: 1..256 characters, no control characters. */
export function name(field: string): z.ZodType<string> {
  let schema = nameSchemas.get(field);
  if (!schema) nameSchemas.set(field, (schema = nameSchema(field)));
  return schema;
}

const nameSchema = (field: string) =>
  z
    .string({ error: `${field} must be a string` })
    .min(1, `${field} must not be empty`)
    .max(256, `${field} must be at most 256 characters`)
    .refine((s) => !CONTROL.test(s), `${field} must not contain control characters`);

/** A message: any JSON object, with an optional string `id`. */
export const messageSchema = z.looseObject({ id: name("id").optional() });

const timeField = z.union([z.string(), z.number()]);
const durationField = z.union([z.string(), z.number()]);

/** `POST /messages` */
export const storeBody = z.strictObject({
  message: messageSchema,
  at: timeField.optional(),
  interval: durationField.optional(),
  end: timeField.optional(),
  topic: name("topic").optional(),
  callback: z.string().max(2048).optional(),
});

/** `POST /messages/:id/ack` */
export const ackBody = z.strictObject({ token: z.string().min(1).max(256) });

/** `POST /messages/:id/nack` */
export const nackBody = z.strictObject({
  token: z.string().min(1).max(256),
  error: z.string().max(4096).optional(),
  retryIn: durationField.optional(),
});

/** `POST /acks`: many acks in one request. */
export const batchAckBody = z.strictObject({
  acks: z.array(z.strictObject({ id: name("id"), token: z.string().min(1).max(256) })).min(1).max(10_000),
});

/** Parses `value` with `schema`, or throws `invalid_request` listing every issue. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)), message: i.message }));
  const summary = issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
  throw new PitstopError("invalid_request", `Invalid request: ${summary}`, { issues });
}

/**
 * Checks a message for the library API as the HTTP API does, and returns a deep copy of it
 * through JSON, so later changes by the caller do not reach the store.
 */
export function checkMessage(message: unknown): Message {
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    throw new PitstopError("invalid_request", "message must be a JSON object", { issues: [{ path: ["message"], message: "must be a JSON object" }] });
  }
  return parseWith(messageSchema, JSON.parse(JSON.stringify(message))) as Message;
}

/** Checks an id or topic given to the library API. */
export function checkName(value: unknown, field: string): string {
  return parseWith(name(field), value);
}
