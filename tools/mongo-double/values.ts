/** Helpers on BSON values and documents as the driver's deserializer gives them. */
import { EJSON, serialize, type Document } from "bson";

/** The largest document the server stores or replies with. */
export const MAX_BSON_SIZE = 16 * 1024 * 1024;

/** A path that reaches nothing (see {@link pathValues}). */
export const MISSING = Symbol("missing");
/** A path that ends on an empty array (see {@link pathValues}). */
export const EMPTY_ARRAY = Symbol("empty array");

export function isPlainObject(value: unknown): value is Document {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function bsonType(value: unknown): string | undefined {
  return value !== null && typeof value === "object" ? (value as { _bsontype?: string })._bsontype : undefined;
}

export function isNumeric(value: unknown): boolean {
  if (typeof value === "number") return true;
  const type = bsonType(value);
  return type === "Long" || type === "Int32" || type === "Double" || type === "Decimal128";
}

export function toNumber(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (bsonType(value) === "Decimal128") return Number(String(value));
  return (value as { valueOf(): number }).valueOf() as number;
}

/** Deep copy of plain objects, arrays and dates; BSON value classes are immutable and shared. */
export function cloneDoc<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneDoc) as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (isPlainObject(value)) {
    const copy: Document = {};
    for (const key of Object.keys(value)) copy[key] = cloneDoc(value[key]);
    return copy as T;
  }
  return value;
}

export function sameBson(a: Document, b: Document): boolean {
  return Buffer.compare(serialize(a), serialize(b)) === 0;
}

export function withIdFirst(doc: Document): Document {
  const keys = Object.keys(doc);
  return doc._id === undefined || keys[0] === "_id" ? doc : { _id: doc._id, ...doc };
}

export function formatValue(value: unknown): string {
  return EJSON.stringify(value === MISSING || value === undefined ? null : value, { relaxed: true });
}

export function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split(".");
  let target = doc;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(target[part])) target[part] = {};
    target = target[part];
  }
  target[parts[parts.length - 1]] = value;
}

/** Value at a dotted path through objects and numeric array indexes; undefined when not reachable that way. */
export function getSimplePath(doc: Document, path: string): unknown {
  let current: unknown = doc;
  for (const part of path.split(".")) {
    if (Array.isArray(current) && /^\d+$/.test(part)) current = current[Number(part)];
    else if (isPlainObject(current) && Object.hasOwn(current, part)) current = current[part];
    else return undefined;
  }
  return current;
}

/**
 * Values a dotted path reaches, descending into arrays the way MongoDB does: a non-numeric
 * part applies to each element, a final array contributes its elements. Unreached branches
 * yield MISSING, a final empty array yields EMPTY_ARRAY.
 */
export function pathValues(value: unknown, parts: string[], i = 0, out: unknown[] = []): unknown[] {
  if (i === parts.length) {
    if (!Array.isArray(value)) out.push(value === undefined ? MISSING : value);
    else if (value.length === 0) out.push(EMPTY_ARRAY);
    else out.push(...value);
    return out;
  }
  const part = parts[i];
  if (Array.isArray(value)) {
    if (/^\d+$/.test(part)) return pathValues(value[Number(part)], parts, i + 1, out);
    if (value.length === 0) out.push(MISSING);
    for (const element of value) {
      pathValues(isPlainObject(element) && Object.hasOwn(element, part) ? element[part] : undefined, parts, i + 1, out);
    }
    return out;
  }
  if (isPlainObject(value) && Object.hasOwn(value, part)) return pathValues(value[part], parts, i + 1, out);
  out.push(MISSING);
  return out;
}
