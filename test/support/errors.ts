import { expect } from "vitest";
import { PitstopError } from "../../src/errors.ts";

/** Asserts that `fn` throws `invalid_request` with `message` (and, when given, an issue on `field`). */
export function expectInvalid(fn: () => unknown, message: string | RegExp, field?: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(PitstopError);
  expect((error as PitstopError).code).toBe("invalid_request");
  expect((error as PitstopError).message).toMatch(message);
  if (field !== undefined) expect(error).toMatchObject({ issues: [{ path: [field] }] });
}
