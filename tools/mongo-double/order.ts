/** BSON comparison order, and sorting documents by a sort spec the way the server does. */
import type { Document, ObjectId } from "bson";
import { CommandError } from "./errors.ts";
import { EMPTY_ARRAY, MISSING, bsonType, formatValue, isPlainObject, pathValues, toNumber } from "./values.ts";

function typeRank(value: unknown): number {
  if (value === EMPTY_ARRAY) return 1.5;
  if (value === MISSING || value === null || value === undefined) return 2;
  switch (typeof value) {
    case "number":
    case "bigint":
      return 3;
    case "string":
      return 4;
    case "boolean":
      return 9;
  }
  if (Array.isArray(value)) return 6;
  if (value instanceof Date) return 10;
  if (value instanceof RegExp) return 12;
  if (ArrayBuffer.isView(value)) return 7;
  switch (bsonType(value)) {
    case "MinKey":
      return 1;
    case "Long":
    case "Int32":
    case "Double":
    case "Decimal128":
      return 3;
    case "BSONSymbol":
      return 4;
    case "Binary":
      return 7;
    case "ObjectId":
      return 8;
    case "Timestamp":
      return 11;
    case "BSONRegExp":
      return 12;
    case "Code":
      return 13;
    case "MaxKey":
      return 14;
  }
  return 5;
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Code point order, which is the UTF-8 byte order MongoDB uses. */
function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code point order only between surrogates and U+E000..U+FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return sign(a.length - b.length);
}

function compareNumbers(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
  if (Number.isNaN(b)) return 1;
  return sign(a - b);
}

function binaryParts(value: unknown): { bytes: Uint8Array; subtype: number } {
  if (ArrayBuffer.isView(value)) return { bytes: new Uint8Array(value.buffer, value.byteOffset, value.byteLength), subtype: 0 };
  const binary = value as { buffer: Uint8Array; position: number; sub_type: number };
  return { bytes: binary.buffer.subarray(0, binary.position), subtype: binary.sub_type };
}

function compareSequences(a: [string, unknown][], b: [string, unknown][], withKeys: boolean): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [ka, va] = a[i];
    const [kb, vb] = b[i];
    const byType = sign(typeRank(va) - typeRank(vb));
    if (byType) return byType;
    if (withKeys) {
      const byKey = compareStrings(ka, kb);
      if (byKey) return byKey;
    }
    const byValue = compareValues(va, vb);
    if (byValue) return byValue;
  }
  return sign(a.length - b.length);
}

export function compareValues(a: unknown, b: unknown): number {
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return rankA < rankB ? -1 : 1;
  switch (rankA) {
    case 3:
      return compareNumbers(toNumber(a), toNumber(b));
    case 4:
      return compareStrings(String(a), String(b));
    case 5:
      return compareSequences(Object.entries(a as Document), Object.entries(b as Document), true);
    case 6:
      return compareSequences(
        (a as unknown[]).map((v, i) => [String(i), v]),
        (b as unknown[]).map((v, i) => [String(i), v]),
        false,
      );
    case 7: {
      const x = binaryParts(a);
      const y = binaryParts(b);
      return sign(x.bytes.length - y.bytes.length) || sign(x.subtype - y.subtype) || Buffer.compare(x.bytes, y.bytes);
    }
    case 8:
      return Buffer.compare((a as ObjectId).id, (b as ObjectId).id);
    case 9:
      return sign(Number(a) - Number(b));
    case 10:
      return compareNumbers((a as Date).getTime(), (b as Date).getTime());
    case 11: {
      const x = a as { t: number; i: number };
      const y = b as { t: number; i: number };
      return sign(x.t - y.t) || sign(x.i - y.i);
    }
    case 12: {
      const x = a instanceof RegExp ? [a.source, a.flags] : [(a as { pattern: string }).pattern, (a as { options: string }).options];
      const y = b instanceof RegExp ? [b.source, b.flags] : [(b as { pattern: string }).pattern, (b as { options: string }).options];
      return compareStrings(x[0], y[0]) || compareStrings(x[1], y[1]);
    }
    case 13:
      return compareStrings(String((a as { code: unknown }).code), String((b as { code: unknown }).code));
  }
  return 0;
}

export interface SortField {
  parts: string[];
  dir: 1 | -1;
}

export function parseSort(spec: Document, where: string): SortField[] {
  return Object.entries(spec).map(([path, dir]) => {
    if (dir !== 1 && dir !== -1) {
      throw new CommandError(2, `${where}: sort order of '${path}' must be 1 or -1, got ${formatValue(dir)}`);
    }
    return { parts: path.split("."), dir };
  });
}

export function sortKey(doc: Document, field: SortField): unknown {
  // A top-level field that is not an array is its own key (what pathValues would find).
  if (field.parts.length === 1 && isPlainObject(doc)) {
    const part = field.parts[0];
    if (!Object.hasOwn(doc, part)) return MISSING;
    const value = doc[part];
    if (!Array.isArray(value)) return value === undefined ? MISSING : value;
  }
  const values = pathValues(doc, field.parts);
  let best = values[0];
  for (const value of values.slice(1)) {
    const order = compareValues(value, best);
    if (field.dir === 1 ? order < 0 : order > 0) best = value;
  }
  return best;
}

function compareKeys(a: unknown[], b: unknown[], fields: SortField[]): number {
  for (let i = 0; i < fields.length; i++) {
    const order = compareValues(a[i], b[i]);
    if (order) return order * fields[i].dir;
  }
  return 0;
}

/** Stable sort in BSON order (ties keep natural order). */
export function sortDocs(docs: Document[], spec: Document, where: string): Document[] {
  const fields = parseSort(spec, where);
  if (fields.length === 0) return docs;
  const keyed = docs.map((doc) => ({ doc, keys: fields.map((field) => sortKey(doc, field)) }));
  keyed.sort((a, b) => compareKeys(a.keys, b.keys, fields));
  return keyed.map((entry) => entry.doc);
}

/**
 * The first `count` documents of `docs` (natural order) that pass `test`, in the order a stable
 * sort by `fields` gives; `count` 0 means all of them. With a count, `test` runs only on
 * documents that would rank among the first `count` so far (ties go to the earlier document),
 * so a sort with a small limit tests few documents once the kept ones rank early.
 */
export function firstMatches(docs: Iterable<Document>, test: (doc: Document) => boolean, fields: SortField[], count: number): Document[] {
  const out: Document[] = [];
  if (fields.length === 0) {
    for (const doc of docs) {
      if (!test(doc)) continue;
      out.push(doc);
      if (out.length === count) break;
    }
    return out;
  }
  // Past a thousand, inserting into the kept list costs more than sorting the matches once.
  if (count === 0 || count > 1000) {
    for (const doc of docs) if (test(doc)) out.push(doc);
    const keyed = out.map((doc) => ({ doc, keys: fields.map((field) => sortKey(doc, field)) }));
    keyed.sort((a, b) => compareKeys(a.keys, b.keys, fields));
    return (count === 0 ? keyed : keyed.slice(0, count)).map((entry) => entry.doc);
  }
  // Kept in sort order; a new document goes after every kept one it ties with (natural order).
  const kept: { doc: Document; keys: unknown[] }[] = [];
  for (const doc of docs) {
    const keys = fields.map((field) => sortKey(doc, field));
    if (kept.length === count && compareKeys(keys, kept[count - 1].keys, fields) >= 0) continue;
    if (!test(doc)) continue;
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(keys, kept[mid].keys, fields) < 0) hi = mid;
      else lo = mid + 1;
    }
    kept.splice(lo, 0, { doc, keys });
    if (kept.length > count) kept.pop();
  }
  return kept.map((entry) => entry.doc);
}
