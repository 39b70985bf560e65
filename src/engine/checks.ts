import { invalid } from "../errors.ts";
import type { Message } from "../types.ts";

// Control characters (C0, DEL, C1) are refused in ids and topics: they break logs, headers and SSE frames.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * What is wrong with an id or topic, or undefined when it is fine: a string of 1..256
 * characters without control characters. The one rule behind the engine's checks and the HTTP
 * schemas.
 */
export function nameProblem(value: unknown, field: string): string | undefined {
  if (typeof value !== "string") return `${field} must be a string`;
  if (value.length === 0) return `${field} must not be empty`;
  if (value.length > 256) return `${field} must be at most 256 characters`;
  if (CONTROL.test(value)) return `${field} must not contain control characters`;
  return undefined;
}

/** Checks an id or topic. @throws PitstopError `invalid_request` naming `field`. */
export function checkName(value: unknown, field: string): string {
  const problem = nameProblem(value, field);
  if (problem) throw invalid(problem, [field]);
  return value as string;
}

/** What is wrong with a message (any JSON object with an optional valid `id`), or undefined. */
export function messageProblem(value: unknown): { path: string[]; message: string } | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { path: ["message"], message: "message must be a JSON object" };
  }
  const id = (value as Message).id;
  if (id !== undefined) {
    const problem = nameProblem(id, "id");
    if (problem) return { path: ["message", "id"], message: problem };
  }
  return undefined;
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
