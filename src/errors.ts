/**
 * Stable error codes. The app maps each to one HTTP status (`statusOf`); clients may rely on them.
 */
export const errorStatus = {
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  lock_lost: 409,
  payload_too_large: 413,
  store_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

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

  get status(): number {
    return errorStatus[this.code];
  }
}

export function invalid(message: string, path: (string | number)[] = []): PitstopError {
  return new PitstopError("invalid_request", message, { issues: [{ path, message }] });
}
