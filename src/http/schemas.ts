import { zValidator } from "@hono/zod-validator";
import type * as z from "zod";
import { PitstopError } from "../errors.ts";
import { documents } from "./openapi.ts";

/** The `invalid_request` error listing every issue of a failed parse. */
export function invalidRequest(error: { issues: z.core.$ZodIssue[] }): PitstopError {
  const issues = error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)), message: i.message }));
  const summary = issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
  return new PitstopError("invalid_request", `Invalid request: ${summary}`, { issues });
}

/**
 * Validates one part of the request with `schema`; a failure is thrown as `invalid_request`. The
 * OpenAPI document lists the schema as the route's parameters.
 */
export const valid = <T extends z.ZodType, Target extends "query" | "param">(target: Target, schema: T) =>
  documents(
    target,
    schema,
    zValidator(target, schema, (result) => {
      if (!result.success) throw invalidRequest(result.error);
    }),
  );
