/** MongoDB error codes, the error a command throws, and how it becomes an `ok: 0` reply. */
import type { Document } from "bson";

const CODE_NAMES: Record<number, string> = {
  1: "InternalError",
  2: "BadValue",
  6: "HostUnreachable",
  9: "FailedToParse",
  13: "Unauthorized",
  14: "TypeMismatch",
  20: "IllegalOperation",
  26: "NamespaceNotFound",
  40: "ConflictingUpdateOperators",
  43: "CursorNotFound",
  48: "NamespaceExists",
  50: "MaxTimeMSExpired",
  53: "InvalidIdField",
  59: "CommandNotFound",
  66: "ImmutableField",
  73: "InvalidNamespace",
  85: "IndexOptionsConflict",
  86: "IndexKeySpecsConflict",
  89: "NetworkTimeout",
  91: "ShutdownInProgress",
  112: "WriteConflict",
  189: "PrimarySteppedDown",
  262: "ExceededTimeLimit",
  352: "UnsupportedOpQueryCommand",
  9001: "SocketException",
  10107: "NotWritablePrimary",
  10334: "BSONObjectTooLarge",
  11000: "DuplicateKey",
  11600: "InterruptedAtShutdown",
  11602: "InterruptedDueToReplStateChange",
  13435: "NotPrimaryNoSecondaryOk",
  13436: "NotPrimaryOrSecondary",
};

export class CommandError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly extra: Document = {},
  ) {
    super(message);
  }
}

export function errorDoc(code: number, message: string, extra: Document = {}): Document {
  const codeName = CODE_NAMES[code];
  return { ok: 0, errmsg: message, code, ...(codeName ? { codeName } : {}), ...extra };
}

/**
 * Applies each statement of a write command, collecting MongoDB `writeErrors` (with the
 * statement's index); an ordered command stops at the first error.
 */
export function eachWrite<T>(statements: T[], ordered: boolean, apply: (statement: T, index: number) => void): { writeErrors?: Document[] } {
  const writeErrors: Document[] = [];
  for (const [index, statement] of statements.entries()) {
    try {
      apply(statement, index);
    } catch (error) {
      const { code, message, extra } = toCommandError(error);
      writeErrors.push({ index, code, errmsg: message, ...extra });
      if (ordered) break;
    }
  }
  return writeErrors.length ? { writeErrors } : {};
}

export function toCommandError(error: unknown): CommandError {
  if (error instanceof CommandError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // mingo reports invalid queries, operators and expressions with its own error class.
  if (error instanceof Error && error.constructor.name === "MingoError") {
    return new CommandError(message.includes("immutable field") ? 66 : 2, message);
  }
  return new CommandError(1, `mongo-double internal error: ${message}`);
}
