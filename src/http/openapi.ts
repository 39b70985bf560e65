import type { Context, Hono, MiddlewareHandler } from "hono";
import * as z from "zod";
import * as api from "../api-schemas.ts";

/*
 * The OpenAPI 3.1 document of the app, generated from the app's own routes: each route carries a
 * `describe` middleware (summary and responses, with the response schemas of src/api-schemas.ts),
 * and the validators that guard it announce their request schemas (see {@link documents}). The
 * schemas become JSON Schema (2020-12, OpenAPI 3.1's dialect) through zod's own `toJSONSchema`.
 * hono-openapi does the same walk but pulls its converters' optional vendors (effect, sury,
 * valibot) into the Worker bundle as imports workerd cannot resolve, and 400 KB of zod with them.
 */

const spec = Symbol("openapi");

type Target = "json" | "query" | "param";
/** What a validator announces. */
interface InputDoc {
  target: Target;
  schema: z.ZodType;
  optional?: boolean;
}
/** One response: JSON with a schema, another media type, or no body. */
interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** A body that is not JSON (`text/event-stream`), described in words. */
  media?: string;
}
/** What `describe` announces. */
interface RouteDoc {
  tags: string[];
  summary: string;
  description?: string;
  responses: Record<number, ResponseDoc>;
  /** `[]` for a public route; absent: the document's default. */
  security?: Record<string, string[]>[];
  input?: InputDoc;
}
type Marked = { [spec]?: RouteDoc | InputDoc };

/** Marks a validator middleware with its schema, so that the document lists its input. */
export function documents<M extends MiddlewareHandler>(target: Target, schema: z.ZodType, middleware: M): M {
  return Object.assign(middleware, { [spec]: { target, schema } });
}

/** A no-op middleware that carries a route's description. */
function describe(doc: RouteDoc): MiddlewareHandler {
  return Object.assign((_c: Context, next: () => Promise<void>) => next(), { [spec]: doc });
}

const json = (schema: z.ZodType, description: string): ResponseDoc => ({ description, schema });
const error = (description: string) => json(api.errorResponse, description);

const unauthorized = { 401: error("`unauthorized`: no valid bearer token, while PITSTOP_TOKEN is set") };
const unavailable = { 503: error("`store_unavailable`: the store does not answer") };
const badBody = {
  400: error("`invalid_request`: the body breaks a rule, each listed under `issues`"),
  413: error("`payload_too_large`: the body is over PITSTOP_MAX_BODY_BYTES"),
  415: error("`unsupported_media_type`: the body is not sent as application/json"),
};
const badInput = { 400: error("`invalid_request`: a parameter breaks a rule, each listed under `issues`") };
const noMessage = { 404: error("`not_found`: no message with this id") };
const lockLost = { 409: error("`lock_lost`: the lock expired or the message was replaced (the token is stale)") };
const done = { 204: { description: "Done (no body)" } };

/** A route's description; `auth: false` for the public routes. */
function route(tag: string, summary: string, responses: Record<number, ResponseDoc>, options: { auth?: boolean; optionalBody?: z.ZodType } = {}) {
  const auth = options.auth ?? true;
  return describe({
    tags: [tag],
    summary,
    responses: auth ? { ...responses, ...unauthorized } : responses,
    ...(!auth && { security: [] }),
    ...(options.optionalBody && { input: { target: "json", schema: options.optionalBody, optional: true } }),
  });
}

/** The description of each route, by the name the app uses. */
export const routes = {
  health: route("operations", "Whether the store answers", { 200: json(api.healthResponse, "The store answers"), 503: json(api.healthResponse, "The store does not answer") }, { auth: false }),
  store: route("messages", "Store a message with its schedule (an existing id is replaced)", {
    201: json(api.scheduleResponse, "Stored"),
    200: json(api.scheduleResponse, "Replaced the message with this id"),
    ...badBody,
    ...unavailable,
  }),
  batch: route("messages", "Store up to 1,000 messages, each checked and stored on its own", {
    200: json(api.batchStoreResponse, "One result per item, in order: its id and 201 or 200, or why it was refused"),
    ...badBody,
    413: error("`payload_too_large`: the body is over 16 × PITSTOP_MAX_BODY_BYTES, or holds more than 1,000 messages"),
    ...unavailable,
  }),
  list: route("messages", "One page of a topic's stored messages", { 200: json(api.pageResponse, "The page; `next` is the cursor of the next one"), ...badInput, ...unavailable }),
  preview: route("schedules", "A schedule's next occurrences, storing nothing", { 200: json(api.previewResponse, "The occurrences"), ...badBody }),
  get: route("messages", "A message with its schedule and state", { 200: json(api.messageResponse, "The message"), ...badInput, ...noMessage, ...unavailable }),
  remove: route("messages", "Delete a message, whatever its state", { ...done, ...badInput, ...noMessage, ...unavailable }),
  ack: route("deliveries", "Ack a delivery: a one-shot message is removed, a recurring one moves on", { ...done, ...badBody, ...noMessage, ...lockLost, ...unavailable }),
  nack: route("deliveries", "Nack a delivery: due again after `retryIn` or the backoff, or dead", { ...done, ...badBody, ...noMessage, ...lockLost, ...unavailable }),
  extend: route("deliveries", "Keep a delivery's lock longer", { 200: json(api.extendResponse, "The lock's new expiry"), ...badBody, ...noMessage, ...lockLost, ...unavailable }),
  redrive: route(
    "dead letters",
    "Make a dead message pending again (the body is optional)",
    { 200: json(api.messageResponse, "The message, pending again"), ...badBody, ...noMessage, 409: error("`invalid_state`: the message is not dead"), ...unavailable },
    { optionalBody: api.redriveBody },
  ),
  topics: route("topics", "Every topic with messages or a policy", { 200: json(api.topicsResponse, "The topics"), ...unavailable }),
  topic: route("topics", "A topic's policy and counts", { 200: json(api.topicResponse, "The topic"), ...badInput, 404: error("`not_found`: the topic has no messages and no policy"), ...unavailable }),
  setPolicy: route("topics", "Set any part of a topic's policy", { 200: json(api.policyResponse, "The whole policy"), ...badBody, ...unavailable }),
  resetPolicy: route("topics", "Reset a topic's policy to the defaults", { ...done, ...badInput, ...unavailable }),
  redriveTopic: route("dead letters", "Redrive every dead message of a topic", { 200: json(api.redrivenResponse, "How many"), ...badInput, ...unavailable }),
  purgeDead: route("dead letters", "Delete a topic's dead messages", { 200: json(api.removedResponse, "How many"), ...badInput, ...unavailable }),
  acks: route("deliveries", "Ack many deliveries in one request", { 200: json(api.batchAckResponse, "How many were acked, and why the others were not"), ...badBody, ...unavailable }),
  tickets: route("deliveries", "A short-lived ticket to open GET /events without the Authorization header (browsers)", { 200: json(api.ticketResponse, "The ticket and when it expires"), ...badBody }),
  events: describe({
    tags: ["deliveries"],
    summary: "Listen: due messages of a topic as server-sent events",
    description:
      "A `text/event-stream`: a `: connected as <consumer>` comment, then one `message` event per delivery with `{id, message, attempt, token, at, deadline}` as data. Authenticated by the bearer token, or by a `ticket` from POST /tickets (for its topic, until it expires).",
    security: [{ bearer: [] }, { ticket: [] }],
    responses: {
      200: { description: "The stream", media: "text/event-stream" },
      ...badInput,
      401: error("`unauthorized`: no valid token or ticket (or a ticket for another topic); `ticket_expired`: the ticket expired"),
    },
  }),
};

type JsonSchema = Record<string, unknown>;

/** `schema` as JSON Schema; schemas with a `meta({ id })` go to `components` and are referenced. */
function toSchema(schema: z.ZodType, components: Record<string, unknown>): JsonSchema {
  const converted = JSON.stringify(z.toJSONSchema(schema, { io: "input", unrepresentable: "any" })).replaceAll('"#/$defs/', '"#/components/schemas/');
  const { $schema: _, $defs, ...root } = JSON.parse(converted) as JsonSchema;
  Object.assign(components, $defs);
  return root;
}

/** The OpenAPI 3.1 document of `app`'s described routes. */
function openapiDocument(app: Hono, options: { auth: boolean }): JsonSchema {
  const components: Record<string, unknown> = {};
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const operation = (method: string, path: string) => ((paths[path.replace(/:(\w+)/g, "{$1}")] ??= {})[method.toLowerCase()] ??= {});
  for (const { method, path, handler } of app.routes) {
    const doc = (handler as Marked)[spec];
    if (!doc || method === "ALL") continue;
    const op = operation(method, path);
    const input = "target" in doc ? doc : doc.input;
    if ("responses" in doc) {
      const { input: _, responses, ...rest } = doc;
      Object.assign(op, rest, {
        operationId: `${method.toLowerCase()}${path.replace(/\/:?(\w)(\w*)/g, (_m, a: string, b: string) => a.toUpperCase() + b)}`,
        responses: Object.fromEntries(
          Object.entries(responses)
            .filter(([status]) => options.auth || status !== "401")
            .map(([status, r]) => [
            status,
            { description: r.description, ...(r.schema && { content: { "application/json": { schema: toSchema(r.schema, components) } } }), ...(r.media && { content: { [r.media]: { schema: { type: "string" } } } }) },
          ]),
        ),
      });
    }
    if (!input) continue;
    const schema = toSchema(input.schema, components);
    if (input.target === "json") {
      op.requestBody = { required: !input.optional, content: { "application/json": { schema } } };
    } else {
      const required = new Set(schema.required as string[] | undefined);
      const properties = Object.entries(schema.properties as Record<string, JsonSchema>);
      op.parameters = [...((op.parameters as unknown[]) ?? []), ...properties.map(([name, s]) => ({ name, in: input.target === "param" ? "path" : "query", required: input.target === "param" || required.has(name), schema: s }))];
    }
  }
  return {
    openapi: "3.1.0",
    info: { title: "pitstop", version: "1", description: "Store messages now, get them back later: one-shot or recurring, over SSE or signed webhooks." },
    security: options.auth ? [{ bearer: [] }] : [],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "PITSTOP_TOKEN" },
        ticket: { type: "apiKey", in: "query", name: "ticket", description: "A stream ticket from POST /tickets (GET /events only)" },
      },
    },
  };
}

/** `GET /openapi.json`: the document of `app`, built on the first request and kept. */
export function openapiHandler(app: Hono, options: { auth: boolean }) {
  let document: JsonSchema | undefined;
  return (c: Context) => c.json((document ??= openapiDocument(app, options)));
}
