import { invalid } from "../errors.ts";
import type { Message } from "../types.ts";

// Control characters (C0, DEL, C1) are refused in ids and topics: they break logs, headers and SSE frames.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// A lone surrogate (half of a UTF-16 pair) is not Unicode text: it cannot be encoded in a URL, a
// header or UTF-8 without turning into U+FFFD, so two such ids would become one.
const LONE_SURROGATE = /\p{Cs}/u;

/** Deepest nesting of objects and arrays a message may have. */
const MAX_MESSAGE_DEPTH = 64;

/**
 * What is wrong with an id or topic, or undefined when it is fine: a string of 1..256
 * characters of well-formed Unicode without control characters, other than `.` and `..`. The one rule behind the engine's checks and the HTTP
 * schemas.
 */
export function nameProblem(value: unknown, field: string): string | undefined {
  if (typeof value !== "string") return `${field} must be a string`;
  if (value.length === 0) return `${field} must not be empty`;
  if (value.length > 256) return `${field} must be at most 256 characters`;
  if (CONTROL.test(value)) return `${field} must not contain control characters`;
  if (LONE_SURROGATE.test(value)) return `${field} must be well-formed Unicode (it contains a lone surrogate)`;
  // "." and ".." are path segments URLs resolve away: /messages/.. is not /messages/%2E%2E.
  if (value === "." || value === "..") return `${field} must not be "." or ".." (they cannot be addressed in a URL path)`;
  return undefined;
}

/** Checks an id or topic. @throws PitstopError `invalid_request` naming `field`. */
export function checkName(value: unknown, field: string): string {
  const problem = nameProblem(value, field);
  if (problem) throw invalid(problem, [field]);
  return value as string;
}

/**
 * What is wrong with a message, or undefined: it must be a JSON object, nested at most
 * {@link MAX_MESSAGE_DEPTH} levels deep, with an optional valid `id`.
 */
export function messageProblem(value: unknown): { path: string[]; message: string } | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { path: ["message"], message: "message must be a JSON object" };
  }
  if (depthOf(value, MAX_MESSAGE_DEPTH) > MAX_MESSAGE_DEPTH) {
    return { path: ["message"], message: `message must not nest objects and arrays more than ${MAX_MESSAGE_DEPTH} levels deep` };
  }
  const id = (value as Message).id;
  if (id !== undefined) {
    const problem = nameProblem(id, "id");
    if (problem) return { path: ["message", "id"], message: problem };
  }
  return undefined;
}

/** Nesting depth of a JSON value (an object or array counts 1), counted without recursion up to just past `limit`. */
function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== "object" || node === null) continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(node)) if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * Checks a message given to the library API and returns a deep copy of it through JSON, so later
 * changes by the caller do not reach the store. @throws PitstopError `invalid_request`.
 */
export function checkMessage(value: unknown): Message {
  const problem = messageProblem(value);
  if (problem) throw invalid(problem.message, problem.path);
  return JSON.parse(JSON.stringify(value)) as Message;
}

/** Checks that `url` is an absolute http(s) URL and returns it normalized. @throws PitstopError `invalid_request`. */
export function checkHttpUrl(url: unknown, field: string): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === "string" ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw invalid(`${field} must be an absolute http(s) URL`, [field]);
  }
  return parsed.href;
}

/** Checks a count such as a claim limit or a prefetch. @throws PitstopError `invalid_request`. */
export function checkCount(value: unknown, field: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(`${field} must be an integer from 1 to ${max}`, [field]);
  }
  return value;
}

/** Longest listing cursor accepted, in characters. */
const MAX_CURSOR = 2048;

/** The opaque cursor a client is given for a store's listing cursor: its UTF-8 bytes in base64url. */
export function cursorOf(storeCursor: string): string {
  const bytes = new TextEncoder().encode(storeCursor);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The error for a listing cursor this server did not give out. */
export const badCursor = () => invalid("cursor is not a cursor this server gave out", ["cursor"]);

/** The store's cursor inside a client's cursor. @throws PitstopError `invalid_request` when it is not one {@link cursorOf} made. */
export function checkCursor(value: unknown): string {
  const refuse = badCursor;
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(value)) throw refuse();
  try {
    const binary = atob(value.replace(/-/g, "+").replace(/_/g, "/"));
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    throw refuse();
  }
}

/** Checks a listing's state filter. @throws PitstopError `invalid_request`. */
export function checkListState(value: unknown): "pending" | "locked" | "dead" | undefined {
  if (value === undefined || value === "pending" || value === "locked" || value === "dead") return value;
  throw invalid(`state must be "pending", "locked" or "dead"`, ["state"]);
}
