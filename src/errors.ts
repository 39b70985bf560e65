/**
 * Stable error codes thrown by the engine and stores; clients may rely on them. The HTTP app maps
 * each to one status, in one place (`src/http/errors.ts`).
 */
export const errorCodes = [
  "invalid_request",
  "unauthorized",
  "ticket_expired",
  "not_found",
  "lock_lost",
  "invalid_state",
  "payload_too_large",
  "unsupported_media_type",
  "store_unavailable",
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** One validation problem, as reported under `issues` in a 400 body. */
export interface ErrorIssue {
  path: (string | number)[];
  message: string;
}

/** The one error class thrown by the engine and stores. */
export class PitstopError extends Error {
  readonly code: ErrorCode;
  readonly issues?: ErrorIssue[];

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; issues?: ErrorIssue[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PitstopError";
    this.code = code;
    this.issues = options?.issues;
  }
}

/** An `invalid_request` error for one field. */
export function invalid(message: string, path: (string | number)[] = []): PitstopError {
  return new PitstopError("invalid_request", message, { issues: [{ path, message }] });
}

/** A `store_unavailable` error with a one-line message: `context: reason` (a PitstopError passes as is). */
export function unavailable(error: unknown, context: string): PitstopError {
  if (error instanceof PitstopError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new PitstopError("store_unavailable", `${context}: ${reason}`.replace(/\s+/g, " ").trim(), { cause: error });
}
