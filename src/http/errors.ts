import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { PitstopError, type ErrorCode } from "../errors.ts";
import type { Logger } from "../log.ts";

/** The one place where error codes become HTTP statuses. */
const statusOf: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  unauthorized: 401,
  ticket_expired: 401,
  not_found: 404,
  lock_lost: 409,
  invalid_state: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  store_unavailable: 503,
};

/** The JSON error answer: `{"error": code, "message", "issues"?}`. */
export function errorResponse(c: Context, error: PitstopError): Response {
  const body = { error: error.code, message: error.message, ...(error.issues && { issues: error.issues }) };
  return c.json(body, statusOf[error.code]);
}

/**
 * `app.onError`: pitstop errors as JSON with their status (a store error also logged); Hono's
 * own as they are; anything else a logged 500.
 */
export function onError(log: Logger) {
  return (error: Error, c: Context): Response => {
    if (error instanceof PitstopError) {
      if (error.code === "store_unavailable") log("error", `${c.req.method} ${c.req.path} answered 503`, error);
      return errorResponse(c, error);
    }
    if (error instanceof HTTPException) return error.getResponse();
    log("error", `${c.req.method} ${c.req.path} failed with an internal error`, error);
    return c.json({ error: "internal", message: "Internal error." }, 500);
  };
}
