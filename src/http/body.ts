import type { Env, MiddlewareHandler } from "hono";
import type * as z from "zod";
import { invalidRequest } from "./schemas.ts";
import { PitstopError } from "../errors.ts";
import { documents } from "./openapi.ts";

const encoder = new TextEncoder();

/** Bytes of an oversized body still read (and dropped) so the client can read its 413. */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/**
 * Reads a request body as text, refusing one over `maxBytes` with `payload_too_large`. An
 * oversized body is drained (up to a bound) before the error, because a server that answers
 * while the client is still sending makes most clients report a reset instead of the 413.
 */
async function readText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = () => new PitstopError("payload_too_large", `The request body is larger than the limit of ${maxBytes} bytes.`);
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes + DRAIN_LIMIT) throw tooLarge();
  // A declared small body is read whole: runtimes fast-path text() without a web stream. Reading
  // `request.body` first would build that stream (on Node, a whole undici Request): a seventh of
  // the time of a `POST /messages`.
  if (declared <= maxBytes && !request.headers.has("transfer-encoding")) {
    const text = await request.text();
    if (text.length <= maxBytes) return text;
    if (encoder.encode(text).byteLength <= maxBytes) return text;
    throw tooLarge();
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes + DRAIN_LIMIT) {
      await reader.cancel();
      break;
    }
    if (size <= maxBytes) chunks.push(value);
  }
  if (size > maxBytes) throw tooLarge();
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * The route's JSON body, read and validated in one step; handlers read it with
 * `c.req.valid("json")`. Refuses other media types (415, which also forces browsers into a CORS
 * preflight), bodies over `maxBytes` (413), malformed JSON and anything `schema` refuses (400).
 *
 * Query and path parameters go through `@hono/zod-validator`; bodies do not, because reading the
 * body in a middleware of its own and then parsing it with zod's async parse cut the rate of
 * `POST /messages` by a third (measured in-process and over HTTP). The OpenAPI document lists
 * `schema` as the route's request body.
 */
export function validJson<T extends z.ZodType>(schema: T, maxBytes: number): MiddlewareHandler<Env, string, { in: { json: z.input<T> }; out: { json: z.output<T> } }> {
  return documents("json", schema, async (c, next) => {
    c.req.addValidatedData("json", parseBody(schema, await readJson(c.req.raw, maxBytes)) as object);
    await next();
  });
}

/** Parses a JSON body with `schema`; a failure is `invalid_request` listing every issue. */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw invalidRequest(result.error);
  return result.data;
}

/** Like {@link readJson}, for a route whose body may be left out: undefined for an empty body. */
export async function readOptionalJson(request: Request, maxBytes: number): Promise<unknown> {
  const type = request.headers.get("content-type");
  if (type !== null && !JSON_TYPE.test(type)) throw notJson();
  const text = await readText(request, maxBytes);
  if (text === "") return undefined;
  if (type === null) throw notJson();
  return parseJson(text);
}

/** A JSON request body: 415 for another media type, 413 over `maxBytes`, 400 when malformed. */
async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  if (!JSON_TYPE.test(request.headers.get("content-type") ?? "")) throw notJson();
  return parseJson(await readText(request, maxBytes));
}

const notJson = () => new PitstopError("unsupported_media_type", "Send the body as JSON, with content-type: application/json.");

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new PitstopError("invalid_request", "The request body is not valid JSON.");
  }
}
