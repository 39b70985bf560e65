/** Checks of command arguments: allowed fields and typed optional values. */
import type { Document } from "bson";
import { CommandError } from "./errors.ts";
import { formatValue, isNumeric, isPlainObject, toNumber } from "./values.ts";

const GENERIC_FIELDS = new Set([
  "$db",
  "lsid",
  "$clusterTime",
  "txnNumber",
  "$readPreference",
  "apiVersion",
  "apiStrict",
  "apiDeprecationErrors",
  "maxTimeMS",
  "writeConcern",
  "readConcern",
  "comment",
]);
const TRANSACTION_FIELDS = new Set(["startTransaction", "autocommit"]);

/** Rejects fields outside `allowed`; a whole command (`commandName` given) may also carry its name and the generic fields. */
export function checkFields(doc: Document, allowed: readonly string[], where: string, commandName?: string): void {
  const isCommand = commandName !== undefined;
  for (const key of Object.keys(doc)) {
    if (key === commandName || allowed.includes(key)) continue;
    if (isCommand && GENERIC_FIELDS.has(key)) continue;
    if (isCommand && TRANSACTION_FIELDS.has(key)) {
      throw new CommandError(20, "mongo-double does not support transactions");
    }
    throw new CommandError(2, `mongo-double does not support option '${key}' of ${where}`);
  }
}

export function optDoc(doc: Document, field: string, where: string): Document | undefined {
  const value = doc[field];
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) throw new CommandError(14, `${where}.${field} must be an object, got ${formatValue(value)}`);
  return value;
}

export function optNumber(doc: Document, field: string, where: string): number | undefined {
  const value = doc[field];
  if (value === undefined || value === null) return undefined;
  if (!isNumeric(value)) throw new CommandError(14, `${where}.${field} must be a number, got ${formatValue(value)}`);
  return toNumber(value);
}

export function optCount(doc: Document, field: string, where: string): number | undefined {
  const value = optNumber(doc, field, where);
  if (value !== undefined && (value < 0 || !Number.isInteger(value))) {
    throw new CommandError(2, `${where}.${field} must be a non-negative integer, got ${value}`);
  }
  return value;
}

export function optBool(doc: Document, field: string, where: string): boolean {
  const value = doc[field];
  if (value === undefined || value === null) return false;
  if (typeof value === "boolean") return value;
  if (isNumeric(value)) return toNumber(value) !== 0;
  throw new CommandError(14, `${where}.${field} must be a boolean, got ${formatValue(value)}`);
}

export function docArray(doc: Document, field: string, where: string): Document[] {
  const value = doc[field];
  if (!Array.isArray(value) || !value.every(isPlainObject)) {
    throw new CommandError(14, `${where}.${field} must be an array of objects`);
  }
  return value;
}

export function collectionName(cmd: Document, name: string): string {
  const value = cmd[name];
  if (typeof value !== "string" || value === "" || value.includes("\0") || value.includes("$")) {
    throw new CommandError(73, `Invalid namespace specified: ${formatValue(value)}`);
  }
  return value;
}
