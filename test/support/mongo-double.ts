/**
 * mongo-double: a small, strict MongoDB server for tests. The real `mongodb` driver connects to
 * it over TCP, so a store is tested through the real driver without a mongod.
 *
 * Wire protocol
 * - OP_MSG (2013): one kind-0 body plus any kind-1 document sequences, merged into the body under
 *   their identifier. A trailing checksum is skipped, not verified. A request with `moreToCome`
 *   (w:0) runs and gets no reply. Replies are OP_MSG with one kind-0 section.
 * - OP_QUERY (2004): only `hello` / `isMaster` / `ismaster` (the driver's first handshake), answered
 *   with OP_REPLY (1). Other commands over OP_QUERY get error 352.
 * - Anything else (OP_COMPRESSED: compression is never advertised) closes the connection.
 *
 * Topology: one standalone node, maxWireVersion 21 (MongoDB 7.0), sessions advertised
 * (logicalSessionTimeoutMinutes 30) so the driver sends `lsid`; no `setName`, so the driver uses
 * a single topology and never sends retryable-write `txnNumber`s. No auth, no TLS.
 *
 * Generic fields accepted (and ignored) on every command: `$db`, `lsid`, `$clusterTime`,
 * `txnNumber`, `$readPreference`, `apiVersion`, `apiStrict`, `apiDeprecationErrors`, `maxTimeMS`,
 * `writeConcern`, `readConcern`, `comment`. `startTransaction` / `autocommit` fail with code 20.
 * Any other field a command does not list below fails with code 2 (BadValue) naming it.
 *
 * Commands and their options
 * - hello, isMaster, ismaster: helloOk, client, compression, backpressure, saslSupportedMechs,
 *   speculativeAuthenticate, loadBalanced, topologyVersion, maxAwaitTimeMS (all ignored).
 * - ping, buildInfo, endSessions.
 * - insert: documents, ordered, bypassDocumentValidation. Missing `_id` gets an ObjectId; `_id` is
 *   moved first. Duplicate keys (on `_id` or a unique index) are writeErrors with code 11000.
 * - update: updates[{q, u, upsert, multi, arrayFilters, hint, sort}], ordered,
 *   bypassDocumentValidation. `u` is an operator document ($set $unset $inc $mul $min $max
 *   $rename $currentDate $push $pull $pullAll $pop $addToSet $bit $setOnInsert), a replacement
 *   document, or a pipeline of $set/$addFields/$unset/$project/$replaceRoot/$replaceWith stages.
 *   Upserts seed the new document from the equality fields of `q` (plain values, `$eq`, `$and`).
 * - delete: deletes[{q, limit (0 or 1), hint}], ordered.
 * - find: filter, sort, projection, skip, limit, batchSize, singleBatch, hint, noCursorTimeout,
 *   allowDiskUse, allowPartialResults. First batch defaults to 101 documents; batches stop
 *   before 16 MiB.
 * - getMore: collection, batchSize. killCursors: cursors.
 * - findAndModify: query, sort, remove, update (same three forms as `update`), new, upsert,
 *   fields, arrayFilters, bypassDocumentValidation, hint.
 * - aggregate: pipeline, cursor (required), allowDiskUse, hint. Stages: $match $sort $limit $skip
 *   $group $count $project $addFields $set $unset $unwind $replaceRoot $replaceWith.
 * - count: query, limit, skip, hint.
 * - createIndexes: indexes[{key, name, unique, sparse, partialFilterExpression,
 *   expireAfterSeconds, background, v}], commitQuorum. Identical specs are a no-op; a name or key
 *   clash with other options fails with 85/86. Key values must be numbers (no text, 2d, hashed).
 * - listIndexes: cursor. listCollections: filter, nameOnly, authorizedCollections, cursor.
 * - create (no options), drop, dropDatabase.
 * - Any other command: code 59 CommandNotFound.
 *
 * Fidelity limits
 * - No transactions, replication, change streams, auth, collation, `let`/`c` variables, explain.
 * - Matching, projection, update operators and aggregation stages are mingo's semantics, not
 *   the server's; they agree on common cases. Sorts (find, update/findAndModify `sort`, $sort
 *   stages) use this file's comparator, which follows BSON order: MinKey < null = missing <
 *   numbers < strings (UTF-8 binary) < objects < arrays < binary < ObjectId < booleans < dates <
 *   timestamps < regexes < MaxKey; arrays sort by their smallest (ascending) or largest
 *   (descending) element.
 * - Numbers: int32, int64 and double all become JS numbers (the driver's default promotion) and
 *   are written back with the bson package's default encoding, so a stored type is not kept.
 *   Decimal128 and longs beyond 2^53 are compared approximately.
 * - Indexes only enforce uniqueness (`unique`, with `sparse` and `partialFilterExpression`); no
 *   query uses them, `hint` is ignored and TTL (`expireAfterSeconds`) never deletes anything.
 *   A query scans its collection unless its filter pins `_id` (a value, `$eq` or `$in`, at the
 *   top level, in an `$and` clause or in every `$or` clause): then it reads those documents
 *   only. Either way the whole filter decides. A sort with a limit keeps the first ones while
 *   scanning and, for filters of plain comparison operators, tests only documents that would be
 *   kept.
 * - Writes are atomic per document and so is findAndModify (the server runs each command to its
 *   end without awaiting). Cursors see a snapshot taken when they were opened and never time
 *   out. Field names are not validated (`$`-prefixed or dotted keys are stored as given).
 *
 * Injected failures (`failNext`)
 * - `"network"`: the connection closes before the command runs; nothing is applied.
 * - `"network-after"`: the command runs to its end (its effects stay applied, a cursor it opened
 *   stays open) and then the connection closes without the reply: a write whose outcome the
 *   client cannot know.
 * - `{ code }`: an `ok: 0` reply with that code; nothing is applied.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { EJSON, Long, MinKey, ObjectId, calculateObjectSize, deserialize, serialize, type Document } from "bson";
import { Aggregator, Query, updateOne } from "mingo";
import { cloneDeep, isEqual } from "mingo/util";

/**
 * How an injected failure shows: a connection dropped before the command runs (`"network"`) or
 * after it ran with its reply unsent (`"network-after"`), or an `ok: 0` reply with this code.
 */
export type MongoDoubleFailure = "network" | "network-after" | { code: number; message?: string };

/** A running double. */
export interface MongoDouble {
  /** mongodb://127.0.0.1:PORT/?directConnection=true */
  uri: string;
  /** Commands received so far, by command name (e.g. `{ find: 3, update: 10 }`), injected failures included. */
  commandCounts(): Record<string, number>;
  /**
   * Makes the next `n` commands named `name` fail: `"network"` closes the connection before the
   * command runs, `"network-after"` runs it (its effects are applied) and then closes the
   * connection without the reply, `{ code }` replies `ok: 0` with that code without running it.
   */
  failNext(name: string, n: number, kind: MongoDoubleFailure): void;
  /** Drops all data and open cursors (command counts and pending failures are kept). */
  reset(): void;
  /** Stops listening and closes every connection. Safe to call twice. */
  close(): Promise<void>;
}

/** Options of {@link startMongoDouble}. */
export interface MongoDoubleOptions {
  /** TCP port on 127.0.0.1. @default 0 (a free port) */
  port?: number;
}

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;
const MAX_BSON_SIZE = 16 * 1024 * 1024;
const MAX_MESSAGE_SIZE = 48_000_000;
const DEFAULT_FIRST_BATCH = 101;
const CLOSE = Symbol("close");

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

class CommandError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly extra: Document = {},
  ) {
    super(message);
  }
}

function errorDoc(code: number, message: string, extra: Document = {}): Document {
  const codeName = CODE_NAMES[code];
  return { ok: 0, errmsg: message, code, ...(codeName ? { codeName } : {}), ...extra };
}

/**
 * Applies each statement of a write command, collecting MongoDB `writeErrors` (with the
 * statement's index); an ordered command stops at the first error.
 */
function eachWrite<T>(statements: T[], ordered: boolean, apply: (statement: T, index: number) => void): { writeErrors?: Document[] } {
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

function toCommandError(error: unknown): CommandError {
  if (error instanceof CommandError) return error;
  const message = error instanceof Error ? error.message : String(error);
  // mingo reports invalid queries, operators and expressions with its own error class.
  if (error instanceof Error && error.constructor.name === "MingoError") {
    return new CommandError(message.includes("immutable field") ? 66 : 2, message);
  }
  return new CommandError(1, `mongo-double internal error: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Values

const MISSING = Symbol("missing");
const EMPTY_ARRAY = Symbol("empty array");

function isPlainObject(value: unknown): value is Document {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function bsonType(value: unknown): string | undefined {
  return value !== null && typeof value === "object" ? (value as { _bsontype?: string })._bsontype : undefined;
}

function isNumeric(value: unknown): boolean {
  if (typeof value === "number") return true;
  const type = bsonType(value);
  return type === "Long" || type === "Int32" || type === "Double" || type === "Decimal128";
}

function toNumber(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (bsonType(value) === "Decimal128") return Number(String(value));
  return (value as { valueOf(): number }).valueOf() as number;
}

/** Deep copy of plain objects, arrays and dates; BSON value classes are immutable and shared. */
function cloneDoc<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneDoc) as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (isPlainObject(value)) {
    const copy: Document = {};
    for (const key of Object.keys(value)) copy[key] = cloneDoc(value[key]);
    return copy as T;
  }
  return value;
}

function sameBson(a: Document, b: Document): boolean {
  return Buffer.compare(serialize(a), serialize(b)) === 0;
}

function withIdFirst(doc: Document): Document {
  const keys = Object.keys(doc);
  return doc._id === undefined || keys[0] === "_id" ? doc : { _id: doc._id, ...doc };
}

function formatValue(value: unknown): string {
  return EJSON.stringify(value === MISSING || value === undefined ? null : value, { relaxed: true });
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split(".");
  let target = doc;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(target[part])) target[part] = {};
    target = target[part];
  }
  target[parts[parts.length - 1]] = value;
}

/** Value at a dotted path through objects and numeric array indexes; undefined when not reachable that way. */
function getSimplePath(doc: Document, path: string): unknown {
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
function pathValues(value: unknown, parts: string[], i = 0, out: unknown[] = []): unknown[] {
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

// ---------------------------------------------------------------------------------------------
// BSON ordering

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

function compareValues(a: unknown, b: unknown): number {
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

interface SortField {
  parts: string[];
  dir: 1 | -1;
}

function parseSort(spec: Document, where: string): SortField[] {
  return Object.entries(spec).map(([path, dir]) => {
    if (dir !== 1 && dir !== -1) {
      throw new CommandError(2, `${where}: sort order of '${path}' must be 1 or -1, got ${formatValue(dir)}`);
    }
    return { parts: path.split("."), dir };
  });
}

function sortKey(doc: Document, field: SortField): unknown {
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
function sortDocs(docs: Document[], spec: Document, where: string): Document[] {
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
function firstMatches(docs: Iterable<Document>, test: (doc: Document) => boolean, fields: SortField[], count: number): Document[] {
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

// ---------------------------------------------------------------------------------------------
// Collections and unique indexes

interface Index {
  name: string;
  key: Document;
  unique: boolean;
  sparse: boolean;
  partialFilterExpression?: Document;
  expireAfterSeconds?: number;
  partial?: Matcher;
  /** Unique indexes only: encoded key → encoded `_id` of its owner. */
  entries?: Map<string, string>;
}

const ID_INDEX_NAME = "_id_";

function normalizeKeyValue(value: unknown): unknown {
  if (value === MISSING || value === undefined) return null;
  if (value === EMPTY_ARRAY) return new MinKey();
  if (Object.is(value, -0)) return 0;
  return value;
}

function encodeKey(values: unknown[]): string {
  return Buffer.from(serialize({ k: values.map(normalizeKeyValue) })).toString("latin1");
}

/** Encoded keys a document has in a unique index (none when sparse or partial excludes it). */
function indexKeys(index: Index, doc: Document): string[] {
  if (index.partial && !index.partial.test(doc)) return [];
  const perField = Object.keys(index.key).map((path) => pathValues(doc, path.split(".")));
  if (index.sparse && perField.every((values) => values.every((v) => v === MISSING))) return [];
  let combos: unknown[][] = [[]];
  for (const values of perField) combos = combos.flatMap((combo) => values.map((v) => [...combo, v]));
  return [...new Set(combos.map(encodeKey))];
}

/** An `_id` filter value that equals exactly the stored `_id`s with the same encoded key. */
function isScalarId(value: unknown): boolean {
  return (
    typeof value === "string" ||
    typeof value === "boolean" ||
    (typeof value === "number" && !Number.isNaN(value)) ||
    value instanceof Date ||
    bsonType(value) === "ObjectId"
  );
}

/** Encoded `_id`s a filter value on `_id` pins it to: a scalar, or `$eq` / `$in` of scalars. */
function pinnedIds(value: unknown): string[] | undefined {
  if (isScalarId(value)) return [encodeKey([value])];
  if (!isPlainObject(value)) return undefined;
  if (Object.hasOwn(value, "$eq") && isScalarId(value.$eq)) return [encodeKey([value.$eq])];
  if (Array.isArray(value.$in) && value.$in.every(isScalarId)) return value.$in.map((id) => encodeKey([id]));
  return undefined;
}

/**
 * Encoded `_id`s among which are all documents `filter` can match, when it pins `_id` at the top
 * level, in a clause of `$and`, or in every clause of `$or`; else undefined.
 */
function idCandidates(filter: Document | undefined): string[] | undefined {
  if (!filter) return undefined;
  if (Object.hasOwn(filter, "_id")) {
    const ids = pinnedIds(filter._id);
    if (ids) return ids;
  }
  if (Array.isArray(filter.$and)) {
    for (const clause of filter.$and) {
      const ids = isPlainObject(clause) ? idCandidates(clause) : undefined;
      if (ids) return ids;
    }
  }
  if (Array.isArray(filter.$or) && filter.$or.length > 0) {
    const all: string[] = [];
    for (const clause of filter.$or) {
      const ids = isPlainObject(clause) ? idCandidates(clause) : undefined;
      if (!ids) return undefined;
      all.push(...ids);
    }
    return all;
  }
  return undefined;
}

const PLAIN_OPERATORS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]);

/**
 * Whether `filter` uses only operators mingo tests without throwing on any document, so testing
 * only some documents (a sort with a limit) cannot hide an error that testing them all would raise.
 */
function testsSafely(filter: Document | undefined): boolean {
  for (const [key, value] of Object.entries(filter ?? {})) {
    if (key === "$and" || key === "$or" || key === "$nor") {
      if (!Array.isArray(value) || !value.every((clause) => isPlainObject(clause) && testsSafely(clause))) return false;
    } else if (key.startsWith("$")) {
      return false;
    } else if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith("$"))) {
      for (const [op, arg] of Object.entries(value)) {
        if (!PLAIN_OPERATORS.has(op) || ((op === "$in" || op === "$nin") && !Array.isArray(arg))) return false;
      }
    }
  }
  return true;
}

class Collection {
  readonly docs = new Map<string, Document>();
  /** Natural order: encoded `_id` → when its document was inserted (`docs` iterates in this order too). */
  private readonly order = new Map<string, number>();
  private nextOrder = 0;
  readonly indexes = new Map<string, Index>([
    [ID_INDEX_NAME, { name: ID_INDEX_NAME, key: { _id: 1 }, unique: false, sparse: false }],
  ]);

  constructor(
    readonly db: string,
    readonly name: string,
  ) {}

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  duplicateKey(index: Index, doc: Document): CommandError {
    const keyValue: Document = {};
    for (const path of Object.keys(index.key)) keyValue[path] = normalizeKeyValue(pathValues(doc, path.split("."))[0]);
    const shown = Object.entries(keyValue)
      .map(([k, v]) => `${k}: ${formatValue(v)}`)
      .join(", ");
    return new CommandError(11000, `E11000 duplicate key error collection: ${this.ns} index: ${index.name} dup key: { ${shown} }`, {
      keyPattern: index.key,
      keyValue,
    });
  }

  /**
   * Replaces `before` by `after` (either may be absent: insert, delete), checking every
   * unique index first so a failed write changes nothing.
   */
  commit(before: Document | undefined, after: Document | undefined): void {
    const id = encodeKey([(after ?? before)!._id]);
    if (!before && this.docs.has(id)) throw this.duplicateKey(this.indexes.get(ID_INDEX_NAME)!, after!);
    const changes: { index: Index; removed: string[]; added: string[] }[] = [];
    for (const index of this.indexes.values()) {
      if (!index.entries) continue;
      const removed = before ? indexKeys(index, before) : [];
      const added = after ? indexKeys(index, after) : [];
      for (const key of added) {
        const owner = index.entries.get(key);
        if (owner !== undefined && owner !== id) throw this.duplicateKey(index, after!);
      }
      changes.push({ index, removed, added });
    }
    for (const { index, removed, added } of changes) {
      for (const key of removed) index.entries!.delete(key);
      for (const key of added) index.entries!.set(key, id);
    }
    if (after) {
      if (!this.docs.has(id)) this.order.set(id, this.nextOrder++);
      this.docs.set(id, after);
    } else {
      this.docs.delete(id);
      this.order.delete(id);
    }
  }

  /**
   * The first `count` (0: all) documents `matcher` (compiled from `filter`) accepts, in `fields`
   * order, ties (and no fields) in natural order. A filter that pins `_id` reads only those
   * documents; any filter is still applied whole to every document returned.
   */
  select(filter: Document | undefined, matcher: Matcher, fields: SortField[], count: number): Document[] {
    let docs: Iterable<Document> = this.docs.values();
    const ids = idCandidates(filter);
    if (ids) {
      const found: [number, Document][] = [];
      for (const id of new Set(ids)) {
        const doc = this.docs.get(id);
        if (doc) found.push([this.order.get(id)!, doc]);
      }
      docs = found.sort((a, b) => a[0] - b[0]).map(([, doc]) => doc);
    }
    let test = (doc: Document) => matcher.test(doc);
    if (count > 0 && !testsSafely(filter)) {
      docs = [...docs].filter(test);
      test = () => true;
    }
    return firstMatches(docs, test, fields, count);
  }
}

/**
 * Matching documents of `collection` (an absent one has none, but the filter and the sort are
 * still checked): the first `count` (0: all) in `sort` order, ties and no sort in natural order.
 */
function selectIn(collection: Collection | undefined, filter: Document | undefined, sort?: Document, where = "sort", count = 0): Document[] {
  const matcher = query(filter);
  const fields = sort ? parseSort(sort, where) : [];
  return collection ? collection.select(filter, matcher, fields, count) : [];
}

// ---------------------------------------------------------------------------------------------
// Command arguments

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
function checkFields(doc: Document, allowed: readonly string[], where: string, commandName?: string): void {
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

function optDoc(doc: Document, field: string, where: string): Document | undefined {
  const value = doc[field];
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) throw new CommandError(14, `${where}.${field} must be an object, got ${formatValue(value)}`);
  return value;
}

function optNumber(doc: Document, field: string, where: string): number | undefined {
  const value = doc[field];
  if (value === undefined || value === null) return undefined;
  if (!isNumeric(value)) throw new CommandError(14, `${where}.${field} must be a number, got ${formatValue(value)}`);
  return toNumber(value);
}

function optCount(doc: Document, field: string, where: string): number | undefined {
  const value = optNumber(doc, field, where);
  if (value !== undefined && (value < 0 || !Number.isInteger(value))) {
    throw new CommandError(2, `${where}.${field} must be a non-negative integer, got ${value}`);
  }
  return value;
}

function optBool(doc: Document, field: string, where: string): boolean {
  const value = doc[field];
  if (value === undefined || value === null) return false;
  if (typeof value === "boolean") return value;
  if (isNumeric(value)) return toNumber(value) !== 0;
  throw new CommandError(14, `${where}.${field} must be a boolean, got ${formatValue(value)}`);
}

function docArray(doc: Document, field: string, where: string): Document[] {
  const value = doc[field];
  if (!Array.isArray(value) || !value.every(isPlainObject)) {
    throw new CommandError(14, `${where}.${field} must be an array of objects`);
  }
  return value;
}

function collectionName(cmd: Document, name: string): string {
  const value = cmd[name];
  if (typeof value !== "string" || value === "" || value.includes("\0") || value.includes("$")) {
    throw new CommandError(73, `Invalid namespace specified: ${formatValue(value)}`);
  }
  return value;
}

interface Matcher {
  test(doc: Document): boolean;
}

function query(filter: Document | undefined): Matcher {
  const mingo = new Query(filter ?? {});
  // Top-level equality on a string, number or boolean rules most documents out without mingo,
  // which matters once a benchmark fills a collection. Arrays and BSON objects defer to mingo.
  const equalities = Object.entries(filter ?? {}).filter(
    ([key, value]) =>
      !key.startsWith("$") &&
      !key.includes(".") &&
      (typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && !Number.isNaN(value))),
  );
  if (equalities.length === 0) return mingo;
  return {
    test: (doc) =>
      equalities.every(([key, value]) => {
        const actual = doc[key];
        return actual === value || (actual !== null && typeof actual === "object");
      }) && mingo.test(doc),
  };
}

function project(docs: Document[], projection: Document | undefined, filter?: Document): Document[] {
  if (!projection || Object.keys(projection).length === 0) return docs;
  // mingo projections may modify their input, and inputs are stored documents.
  return new Query(filter ?? {})
    .find<Document>(docs.map(cloneDoc), projection)
    .all()
    .map(withIdFirst);
}

// ---------------------------------------------------------------------------------------------
// Updates

const UPDATE_OPERATORS = new Set([
  "$set",
  "$unset",
  "$inc",
  "$mul",
  "$min",
  "$max",
  "$rename",
  "$currentDate",
  "$push",
  "$pull",
  "$pullAll",
  "$pop",
  "$addToSet",
  "$bit",
  "$setOnInsert",
]);
const UPDATE_STAGES = new Set(["$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith"]);
const AGGREGATE_STAGES = new Set([
  "$match",
  "$sort",
  "$limit",
  "$skip",
  "$group",
  "$count",
  "$project",
  "$addFields",
  "$set",
  "$unset",
  "$unwind",
  "$replaceRoot",
  "$replaceWith",
]);

function checkPipeline(pipeline: unknown, allowed: Set<string>, where: string): Document[] {
  if (!Array.isArray(pipeline)) throw new CommandError(14, `${where} must be an array`);
  for (const stage of pipeline) {
    if (!isPlainObject(stage) || Object.keys(stage).length !== 1) {
      throw new CommandError(2, `${where}: a pipeline stage must be an object with exactly one field`);
    }
    const op = Object.keys(stage)[0];
    if (!allowed.has(op)) throw new CommandError(2, `mongo-double does not support stage '${op}' in ${where}`);
  }
  return pipeline;
}

function checkOperators(update: Document): void {
  const paths: string[] = [];
  for (const [op, spec] of Object.entries(update)) {
    if (!UPDATE_OPERATORS.has(op)) {
      throw new CommandError(9, `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`);
    }
    if (!isPlainObject(spec)) throw new CommandError(9, `Modifiers operate on fields but we found ${formatValue(spec)} for ${op}`);
    for (const [path, arg] of Object.entries(spec)) {
      paths.push(path);
      if (op === "$rename" && typeof arg === "string") paths.push(arg);
      if ((op === "$inc" || op === "$mul") && !isNumeric(arg)) {
        throw new CommandError(14, `Cannot ${op === "$inc" ? "increment" : "multiply"} with non-numeric argument: {${path}: ${formatValue(arg)}}`);
      }
    }
  }
  for (let i = 0; i < paths.length; i++) {
    for (let j = i + 1; j < paths.length; j++) {
      const [a, b] = [paths[i], paths[j]];
      if (a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`)) {
        throw new CommandError(40, `Updating the path '${a}' would create a conflict at '${b}'`);
      }
    }
  }
}

function checkNumericTargets(doc: Document, update: Document): void {
  for (const op of ["$inc", "$mul"]) {
    for (const path of Object.keys(update[op] ?? {})) {
      if (path.includes("$")) continue;
      const current = getSimplePath(doc, path);
      if (current !== undefined && !isNumeric(current)) {
        throw new CommandError(
          14,
          `Cannot apply ${op} to a value of non-numeric type. {_id: ${formatValue(doc._id)}} has the field '${path}' of non-numeric type ${formatValue(current)}`,
        );
      }
    }
  }
}

function checkStorable(doc: Document): void {
  if (Array.isArray(doc._id)) throw new CommandError(53, "The '_id' value cannot be of type array");
  const size = calculateObjectSize(doc);
  if (size > MAX_BSON_SIZE) {
    throw new CommandError(10334, `Document too large: ${size} bytes, max ${MAX_BSON_SIZE}`);
  }
}

type UpdateSpec = Document | Document[];

interface ModifyOptions {
  /** Filter that selected the document (for the positional `$` operator). */
  filter: Document;
  arrayFilters?: Document[];
  /** True when the update builds an upserted document ($setOnInsert applies). */
  inserting: boolean;
}

/** Checks the shape of an update spec before any document is touched. */
function checkUpdateSpec(spec: unknown, where: string): UpdateSpec {
  if (Array.isArray(spec)) return checkPipeline(spec, UPDATE_STAGES, where);
  if (!isPlainObject(spec)) throw new CommandError(14, `${where} must be an object or an array`);
  const keys = Object.keys(spec);
  if (keys.length > 0 && keys[0].startsWith("$")) checkOperators(spec);
  else if (keys.some((key) => key.startsWith("$"))) {
    throw new CommandError(2, `${where}: a replacement document cannot contain '$' fields`);
  }
  return spec;
}

function isOperatorUpdate(spec: UpdateSpec): boolean {
  return !Array.isArray(spec) && Object.keys(spec)[0]?.startsWith("$") === true;
}

/** Whether an operator update names a path with a `$` in it (positional operators), `$rename` targets included. */
function namesDollarPath(operators: Document): boolean {
  for (const [op, spec] of Object.entries(operators)) {
    for (const [path, arg] of Object.entries(spec as Document)) {
      if (path.includes("$") || (op === "$rename" && typeof arg === "string" && arg.includes("$"))) return true;
    }
  }
  return false;
}

const SIMPLE_OPERATORS = new Set(["$set", "$unset", "$inc"]);

/**
 * Applies `$set`, `$unset` and `$inc` on top-level fields to `doc` in place, exactly as mingo's
 * updateOne would (same steps, mingo's own isEqual and cloneDeep), and returns true; returns
 * false without touching `doc` for anything else. mingo rebuilds its operator tables on every
 * call, which costs far more than these updates.
 */
function applySimple(doc: Document, operators: Document): boolean {
  for (const [op, spec] of Object.entries(operators)) {
    if (!SIMPLE_OPERATORS.has(op)) return false;
    for (const [path, arg] of Object.entries(spec as Document)) {
      if (path === "" || path === "_id" || /[.$]/.test(path) || path === "__proto__" || path === "constructor" || path === "prototype") return false;
      if (op === "$inc" && (typeof arg !== "number" || Number.isNaN(arg))) return false;
    }
  }
  for (const [op, spec] of Object.entries(operators)) {
    for (const [path, arg] of Object.entries(spec as Document)) {
      const current = doc[path];
      if (op === "$set") {
        if (!isEqual(current, arg)) doc[path] = cloneDeep(arg);
      } else if (op === "$unset") {
        if (Object.hasOwn(doc, path)) delete doc[path];
      } else if ((typeof current === "number" && !Number.isNaN(current)) || current === undefined) {
        doc[path] = (current || 0) + arg;
      }
    }
  }
  return true;
}

/** The document `old` becomes under `spec`; `old` itself is never modified. */
function modify(old: Document, spec: UpdateSpec, options: ModifyOptions): Document {
  let next: Document;
  if (Array.isArray(spec)) {
    next = new Aggregator(spec).run([cloneDoc(old)])[0] as Document;
  } else if (isOperatorUpdate(spec)) {
    const { $setOnInsert, ...operators } = spec;
    if (options.inserting && $setOnInsert) operators.$set = { ...operators.$set, ...$setOnInsert };
    checkNumericTargets(old, operators);
    next = cloneDoc(old);
    if (Object.keys(operators).length > 0 && !applySimple(next, operators)) {
      const docs = [next];
      // mingo reads the filter to match (the caller already did) and for the positional `$`
      // operator; compiling and testing a large filter once per updated document is what made
      // an updateMany over a long $or quadratic, so it gets the filter only when a path has `$`.
      const filter = options.inserting || !namesDollarPath(operators) ? {} : options.filter;
      updateOne(docs, filter, operators, {
        arrayFilters: options.arrayFilters,
        cloneMode: "deep",
      });
      next = docs[0];
    }
  } else {
    if (old._id !== undefined && spec._id !== undefined && encodeKey([spec._id]) !== encodeKey([old._id])) {
      throw new CommandError(66, `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${formatValue(spec._id)}`);
    }
    next = old._id === undefined ? cloneDoc(spec) : { _id: old._id, ...cloneDoc(spec) };
  }
  if (old._id !== undefined && (next._id === undefined || encodeKey([next._id]) !== encodeKey([old._id]))) {
    throw new CommandError(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
  }
  return withIdFirst(next);
}

/** Equality fields of a filter, as the seed of an upserted document. */
function seedFromFilter(filter: Document, seed: Document = {}): Document {
  for (const [key, value] of Object.entries(filter)) {
    if (key === "$and" && Array.isArray(value)) {
      for (const clause of value) if (isPlainObject(clause)) seedFromFilter(clause, seed);
      continue;
    }
    if (key.startsWith("$") || value instanceof RegExp || bsonType(value) === "BSONRegExp") continue;
    if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith("$"))) {
      if (Object.hasOwn(value, "$eq")) setPath(seed, key, cloneDoc(value.$eq));
      continue;
    }
    setPath(seed, key, cloneDoc(value));
  }
  return seed;
}

function upsertDoc(filter: Document, spec: UpdateSpec, arrayFilters: Document[] | undefined): Document {
  const seed = seedFromFilter(filter);
  let doc: Document;
  if (Array.isArray(spec) || isOperatorUpdate(spec)) {
    doc = modify(seed, spec, { filter, arrayFilters, inserting: true });
  } else {
    doc = cloneDoc(spec);
    if (doc._id === undefined && seed._id !== undefined) doc._id = seed._id;
  }
  if (doc._id === undefined) doc = { _id: new ObjectId(), ...doc };
  doc = withIdFirst(doc);
  checkStorable(doc);
  return doc;
}

// ---------------------------------------------------------------------------------------------
// The engine

interface Context {
  db: string;
  connectionId: number;
}

interface OpenCursor {
  ns: string;
  docs: Document[];
  pos: number;
}

interface CommandDef {
  options: readonly string[];
  run(cmd: Document, ctx: Context): Document;
}

const HELLO_OPTIONS = [
  "helloOk",
  "client",
  "compression",
  "backpressure",
  "saslSupportedMechs",
  "speculativeAuthenticate",
  "loadBalanced",
  "topologyVersion",
  "maxAwaitTimeMS",
];

class Engine {
  readonly counts: Record<string, number> = {};
  private readonly failures = new Map<string, { remaining: number; kind: MongoDoubleFailure }>();
  private readonly dbs = new Map<string, Map<string, Collection>>();
  private readonly cursors = new Map<number, OpenCursor>();
  private nextCursorId = 1;
  private readonly commands: Record<string, CommandDef> = {
    hello: { options: HELLO_OPTIONS, run: (_cmd, ctx) => this.hello(ctx, false) },
    isMaster: { options: HELLO_OPTIONS, run: (_cmd, ctx) => this.hello(ctx, true) },
    ismaster: { options: HELLO_OPTIONS, run: (_cmd, ctx) => this.hello(ctx, true) },
    ping: { options: [], run: () => ({ ok: 1 }) },
    buildInfo: {
      options: [],
      run: () => ({
        version: "7.0.0",
        gitVersion: "mongo-double",
        versionArray: [7, 0, 0, 0],
        bits: 64,
        maxBsonObjectSize: MAX_BSON_SIZE,
        ok: 1,
      }),
    },
    endSessions: { options: [], run: () => ({ ok: 1 }) },
    insert: { options: ["documents", "ordered", "bypassDocumentValidation"], run: (cmd, ctx) => this.insert(cmd, ctx) },
    update: { options: ["updates", "ordered", "bypassDocumentValidation"], run: (cmd, ctx) => this.update(cmd, ctx) },
    delete: { options: ["deletes", "ordered"], run: (cmd, ctx) => this.delete(cmd, ctx) },
    find: {
      options: [
        "filter",
        "sort",
        "projection",
        "skip",
        "limit",
        "batchSize",
        "singleBatch",
        "hint",
        "noCursorTimeout",
        "allowDiskUse",
        "allowPartialResults",
      ],
      run: (cmd, ctx) => this.find(cmd, ctx),
    },
    getMore: { options: ["collection", "batchSize"], run: (cmd, ctx) => this.getMore(cmd, ctx) },
    killCursors: { options: ["cursors"], run: (cmd) => this.killCursors(cmd) },
    findAndModify: {
      options: ["query", "sort", "remove", "update", "new", "upsert", "fields", "arrayFilters", "bypassDocumentValidation", "hint"],
      run: (cmd, ctx) => this.findAndModify(cmd, ctx),
    },
    aggregate: { options: ["pipeline", "cursor", "allowDiskUse", "hint"], run: (cmd, ctx) => this.aggregate(cmd, ctx) },
    count: { options: ["query", "limit", "skip", "hint"], run: (cmd, ctx) => this.count(cmd, ctx) },
    createIndexes: { options: ["indexes", "commitQuorum"], run: (cmd, ctx) => this.createIndexes(cmd, ctx) },
    listIndexes: { options: ["cursor"], run: (cmd, ctx) => this.listIndexes(cmd, ctx) },
    listCollections: {
      options: ["filter", "nameOnly", "authorizedCollections", "cursor"],
      run: (cmd, ctx) => this.listCollections(cmd, ctx),
    },
    create: { options: [], run: (cmd, ctx) => this.create(cmd, ctx) },
    drop: { options: [], run: (cmd, ctx) => this.drop(cmd, ctx) },
    dropDatabase: { options: [], run: (_cmd, ctx) => (this.dbs.delete(ctx.db), { ok: 1 }) },
  };

  failNext(name: string, n: number, kind: MongoDoubleFailure): void {
    if (n > 0) this.failures.set(name, { remaining: n, kind });
    else this.failures.delete(name);
  }

  reset(): void {
    this.dbs.clear();
    this.cursors.clear();
  }

  /** Runs one command; `CLOSE` asks the connection to drop without a reply. */
  execute(cmd: Document, db: unknown, connectionId: number): Document | typeof CLOSE {
    const name = Object.keys(cmd)[0] ?? "";
    this.counts[name] = (this.counts[name] ?? 0) + 1;
    const failure = this.failures.get(name);
    if (!failure) return this.run(name, cmd, db, connectionId);
    if (--failure.remaining <= 0) this.failures.delete(name);
    if (failure.kind === "network") return CLOSE;
    if (failure.kind === "network-after") {
      this.run(name, cmd, db, connectionId);
      return CLOSE;
    }
    return errorDoc(failure.kind.code, failure.kind.message ?? `mongo-double: injected failure of '${name}'`);
  }

  /** Runs one command as the server would, its errors as `ok: 0` replies. */
  private run(name: string, cmd: Document, db: unknown, connectionId: number): Document {
    const def = Object.hasOwn(this.commands, name) ? this.commands[name] : undefined;
    if (!def) return errorDoc(59, `no such command: '${name}'`);
    if (typeof db !== "string" || db === "") return errorDoc(40571, "OP_MSG requests require a $db argument");
    try {
      checkFields(cmd, def.options, `command '${name}'`, name);
      return def.run(cmd, { db, connectionId });
    } catch (error) {
      const { code, message, extra } = toCommandError(error);
      return errorDoc(code, message, extra);
    }
  }

  private collection(db: string, name: string, create: boolean): Collection | undefined {
    let collections = this.dbs.get(db);
    if (!collections) {
      if (!create) return undefined;
      collections = new Map();
      this.dbs.set(db, collections);
    }
    let collection = collections.get(name);
    if (!collection && create) {
      collection = new Collection(db, name);
      collections.set(name, collection);
    }
    return collection;
  }

  private hello(ctx: Context, legacy: boolean): Document {
    return {
      helloOk: true,
      [legacy ? "ismaster" : "isWritablePrimary"]: true,
      maxBsonObjectSize: MAX_BSON_SIZE,
      maxMessageSizeBytes: MAX_MESSAGE_SIZE,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: ctx.connectionId,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
      ok: 1,
    };
  }

  private cursorReply(ns: string, docs: Document[], batchSize: number | undefined, singleBatch: boolean): Document {
    const cursor: OpenCursor = { ns, docs, pos: 0 };
    const firstBatch = this.takeBatch(cursor, batchSize ?? DEFAULT_FIRST_BATCH);
    let id = 0;
    if (cursor.pos < docs.length && !singleBatch) {
      id = this.nextCursorId++;
      this.cursors.set(id, cursor);
    }
    return { cursor: { firstBatch, id: Long.fromNumber(id), ns }, ok: 1 };
  }

  private takeBatch(cursor: OpenCursor, batchSize: number): Document[] {
    const batch: Document[] = [];
    let bytes = 0;
    while (batch.length < batchSize && cursor.pos < cursor.docs.length) {
      const size = calculateObjectSize(cursor.docs[cursor.pos]);
      if (batch.length > 0 && bytes + size > MAX_BSON_SIZE) break;
      bytes += size;
      batch.push(cursor.docs[cursor.pos++]);
    }
    return batch;
  }

  private insert(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "insert");
    const docs = docArray(cmd, "documents", "insert");
    const ordered = cmd.ordered === undefined ? true : optBool(cmd, "ordered", "insert");
    const collection = this.collection(ctx.db, name, true)!;
    let n = 0;
    const errors = eachWrite(docs, ordered, (input) => {
      const doc = withIdFirst(input._id === undefined ? { _id: new ObjectId(), ...input } : input);
      checkStorable(doc);
      collection.commit(undefined, doc);
      n++;
    });
    return { n, ...errors, ok: 1 };
  }

  private update(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "update");
    const ordered = cmd.ordered === undefined ? true : optBool(cmd, "ordered", "update");
    const statements = docArray(cmd, "updates", "update").map((stmt, i) => {
      const where = `update.updates[${i}]`;
      checkFields(stmt, ["q", "u", "upsert", "multi", "arrayFilters", "hint", "sort"], where);
      const filter = optDoc(stmt, "q", where);
      if (!filter) throw new CommandError(9, `${where}.q is required`);
      const spec = checkUpdateSpec(stmt.u, `${where}.u`);
      const multi = optBool(stmt, "multi", where);
      if (multi && !Array.isArray(spec) && !isOperatorUpdate(spec)) {
        throw new CommandError(9, "multi update is not supported for replacement-style update");
      }
      const sort = optDoc(stmt, "sort", where);
      if (multi && sort) throw new CommandError(2, `${where}: sort is not allowed with multi`);
      const arrayFilters = stmt.arrayFilters === undefined ? undefined : docArray(stmt, "arrayFilters", where);
      return { filter, spec, multi, sort, arrayFilters, upsert: optBool(stmt, "upsert", where) };
    });
    const result = { n: 0, nModified: 0 };
    const upserted: Document[] = [];
    const errors = eachWrite(statements, ordered, (stmt, index) => {
      const existing = this.collection(ctx.db, name, false);
      let targets: Document[];
      try {
        targets = stmt.multi ? selectIn(existing, stmt.filter) : selectIn(existing, stmt.filter, stmt.sort, "update.sort", 1);
      } catch (error) {
        // A bad sort fails only a statement that matches a document.
        if (stmt.multi || !stmt.sort || selectIn(existing, stmt.filter, undefined, "", 1).length > 0) throw error;
        targets = [];
      }
      if (targets.length === 0) {
        if (!stmt.upsert) return;
        const doc = upsertDoc(stmt.filter, stmt.spec, stmt.arrayFilters);
        this.collection(ctx.db, name, true)!.commit(undefined, doc);
        result.n++;
        upserted.push({ index, _id: doc._id });
        return;
      }
      for (const old of targets) {
        const next = modify(old, stmt.spec, { filter: stmt.filter, arrayFilters: stmt.arrayFilters, inserting: false });
        if (!sameBson(old, next)) {
          checkStorable(next);
          existing!.commit(old, next);
          result.nModified++;
        }
        result.n++;
      }
    });
    return {
      ...result,
      ...(upserted.length ? { upserted } : {}),
      ...errors,
      ok: 1,
    };
  }

  private delete(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "delete");
    const ordered = cmd.ordered === undefined ? true : optBool(cmd, "ordered", "delete");
    const statements = docArray(cmd, "deletes", "delete").map((stmt, i) => {
      const where = `delete.deletes[${i}]`;
      checkFields(stmt, ["q", "limit", "hint"], where);
      const filter = optDoc(stmt, "q", where);
      if (!filter) throw new CommandError(9, `${where}.q is required`);
      const limit = optNumber(stmt, "limit", where);
      if (limit !== 0 && limit !== 1) {
        throw new CommandError(9, `The limit field in delete objects must be 0 or 1. Got ${formatValue(stmt.limit)}`);
      }
      return { filter, limit };
    });
    let n = 0;
    const errors = eachWrite(statements, ordered, (stmt) => {
      const collection = this.collection(ctx.db, name, false);
      for (const doc of selectIn(collection, stmt.filter, undefined, "", stmt.limit)) {
        collection!.commit(doc, undefined);
        n++;
      }
    });
    return { n, ...errors, ok: 1 };
  }

  private find(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "find");
    const filter = optDoc(cmd, "filter", "find");
    const sort = optDoc(cmd, "sort", "find");
    const projection = optDoc(cmd, "projection", "find");
    const skip = optCount(cmd, "skip", "find") ?? 0;
    const limit = optCount(cmd, "limit", "find") ?? 0;
    const batchSize = optCount(cmd, "batchSize", "find");
    const singleBatch = optBool(cmd, "singleBatch", "find");
    let docs = selectIn(this.collection(ctx.db, name, false), filter, sort, "find.sort", limit > 0 ? skip + limit : 0);
    docs = docs.slice(skip, limit > 0 ? skip + limit : undefined);
    docs = project(docs, projection, filter);
    return this.cursorReply(`${ctx.db}.${name}`, docs, batchSize, singleBatch);
  }

  private getMore(cmd: Document, ctx: Context): Document {
    const id = cmd.getMore;
    if (!isNumeric(id)) throw new CommandError(14, `getMore must be a cursor id, got ${formatValue(id)}`);
    const name = collectionName(cmd, "collection");
    const batchSize = optCount(cmd, "batchSize", "getMore");
    const cursorId = toNumber(id);
    const cursor = this.cursors.get(cursorId);
    if (!cursor) throw new CommandError(43, `cursor id ${cursorId} not found`);
    const ns = `${ctx.db}.${name}`;
    if (cursor.ns !== ns) {
      throw new CommandError(13, `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`);
    }
    const nextBatch = this.takeBatch(cursor, batchSize || Infinity);
    const exhausted = cursor.pos >= cursor.docs.length;
    if (exhausted) this.cursors.delete(cursorId);
    return { cursor: { nextBatch, id: Long.fromNumber(exhausted ? 0 : cursorId), ns }, ok: 1 };
  }

  private killCursors(cmd: Document): Document {
    collectionName(cmd, "killCursors");
    if (!Array.isArray(cmd.cursors) || !cmd.cursors.every(isNumeric)) {
      throw new CommandError(14, "killCursors.cursors must be an array of cursor ids");
    }
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const id of cmd.cursors) {
      const n = toNumber(id);
      (this.cursors.delete(n) ? killed : notFound).push(Long.fromNumber(n));
    }
    return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
  }

  private findAndModify(cmd: Document, ctx: Context): Document {
    const where = "findAndModify";
    const name = collectionName(cmd, "findAndModify");
    const filter = optDoc(cmd, "query", where) ?? {};
    const sort = optDoc(cmd, "sort", where);
    const fields = optDoc(cmd, "fields", where);
    const remove = optBool(cmd, "remove", where);
    const returnNew = optBool(cmd, "new", where);
    const upsert = optBool(cmd, "upsert", where);
    const arrayFilters = cmd.arrayFilters === undefined ? undefined : docArray(cmd, "arrayFilters", where);
    const hasUpdate = cmd.update !== undefined && cmd.update !== null;
    if (remove && hasUpdate) throw new CommandError(9, "Cannot specify both an update and remove=true");
    if (!remove && !hasUpdate) throw new CommandError(9, "Either an update or remove=true must be specified");
    if (remove && (returnNew || upsert)) throw new CommandError(9, "Cannot specify both new=true or upsert=true and remove=true");
    const spec = hasUpdate ? checkUpdateSpec(cmd.update, `${where}.update`) : undefined;

    const existing = this.collection(ctx.db, name, false);
    const [target] = selectIn(existing, filter, sort, `${where}.sort`, 1);
    const value = (doc: Document | undefined) => (doc ? project([doc], fields)[0] : null);

    if (!spec) {
      if (target) existing!.commit(target, undefined);
      return { lastErrorObject: { n: target ? 1 : 0 }, value: value(target), ok: 1 };
    }
    if (target) {
      const next = modify(target, spec, { filter, arrayFilters, inserting: false });
      if (!sameBson(target, next)) {
        checkStorable(next);
        existing!.commit(target, next);
      }
      return { lastErrorObject: { n: 1, updatedExisting: true }, value: value(returnNew ? next : target), ok: 1 };
    }
    if (!upsert) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
    const doc = upsertDoc(filter, spec, arrayFilters);
    this.collection(ctx.db, name, true)!.commit(undefined, doc);
    return {
      lastErrorObject: { n: 1, updatedExisting: false, upserted: doc._id },
      value: returnNew ? value(doc) : null,
      ok: 1,
    };
  }

  private aggregate(cmd: Document, ctx: Context): Document {
    if (typeof cmd.aggregate !== "string") {
      throw new CommandError(2, "mongo-double supports aggregate only on a collection");
    }
    const name = collectionName(cmd, "aggregate");
    const pipeline = checkPipeline(cmd.pipeline, AGGREGATE_STAGES, "aggregate.pipeline");
    const cursor = optDoc(cmd, "cursor", "aggregate");
    if (!cursor) throw new CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument");
    checkFields(cursor, ["batchSize"], "aggregate.cursor");
    const batchSize = optCount(cursor, "batchSize", "aggregate.cursor");
    const collection = this.collection(ctx.db, name, false);
    // mingo stages may modify their input, and inputs are stored documents.
    let docs = collection ? [...collection.docs.values()].map(cloneDoc) : [];
    let pending: Document[] = [];
    const flush = () => {
      if (pending.length) docs = new Aggregator(pending).run(docs) as Document[];
      pending = [];
    };
    for (const stage of pipeline) {
      if (!Object.hasOwn(stage, "$sort")) {
        pending.push(stage);
        continue;
      }
      flush();
      if (!isPlainObject(stage.$sort)) throw new CommandError(14, "$sort must be an object");
      docs = sortDocs(docs, stage.$sort, "$sort");
    }
    flush();
    return this.cursorReply(`${ctx.db}.${name}`, docs, batchSize, false);
  }

  private count(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "count");
    const filter = optDoc(cmd, "query", "count");
    const skip = optCount(cmd, "skip", "count") ?? 0;
    const limit = Math.abs(optNumber(cmd, "limit", "count") ?? 0);
    const matched = selectIn(this.collection(ctx.db, name, false), filter).length;
    const n = Math.max(0, matched - skip);
    return { n: limit > 0 ? Math.min(n, limit) : n, ok: 1 };
  }

  private createIndexes(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "createIndexes");
    const specs = docArray(cmd, "indexes", "createIndexes");
    if (specs.length === 0) throw new CommandError(2, "Must specify at least one index to create");
    const created = !this.collection(ctx.db, name, false);
    const collection = this.collection(ctx.db, name, true)!;
    const before = collection.indexes.size;
    const added: Index[] = [];
    for (const [i, spec] of specs.entries()) {
      const where = `createIndexes.indexes[${i}]`;
      checkFields(spec, ["key", "name", "unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "background", "v"], where);
      const key = optDoc(spec, "key", where);
      if (!key || Object.keys(key).length === 0) throw new CommandError(9, `${where}.key must be a non-empty object`);
      for (const [path, dir] of Object.entries(key)) {
        if (!isNumeric(dir) || toNumber(dir) === 0) {
          throw new CommandError(2, `mongo-double supports only ascending/descending index keys, got ${path}: ${formatValue(dir)}`);
        }
      }
      if (spec.name !== undefined && typeof spec.name !== "string") throw new CommandError(14, `${where}.name must be a string`);
      const index: Index = {
        name: spec.name ?? Object.entries(key).map(([path, dir]) => `${path}_${dir}`).join("_"),
        key,
        unique: optBool(spec, "unique", where),
        sparse: optBool(spec, "sparse", where),
        partialFilterExpression: optDoc(spec, "partialFilterExpression", where),
        expireAfterSeconds: optNumber(spec, "expireAfterSeconds", where),
      };
      const options = (x: Index) => encodeKey([x.unique, x.sparse, x.partialFilterExpression, x.expireAfterSeconds]);
      const sameKey = (x: Index) => encodeKey([x.key]) === encodeKey([index.key]);
      const known = [...collection.indexes.values(), ...added];
      const byName = known.find((x) => x.name === index.name);
      if (byName) {
        if (!sameKey(byName)) {
          throw new CommandError(86, `An existing index has the same name as the requested index but a different key: ${index.name}`);
        }
        if (options(byName) !== options(index)) {
          throw new CommandError(85, `An existing index has the same name as the requested index but different options: ${index.name}`);
        }
        continue;
      }
      const byKey = known.find(sameKey);
      if (byKey) throw new CommandError(85, `Index already exists with a different name: ${byKey.name}`);
      if (index.partialFilterExpression) index.partial = query(index.partialFilterExpression);
      if (index.unique) {
        index.entries = new Map();
        for (const [id, doc] of collection.docs) {
          for (const k of indexKeys(index, doc)) {
            if (index.entries.has(k)) throw collection.duplicateKey(index, doc);
            index.entries.set(k, id);
          }
        }
      }
      added.push(index);
    }
    for (const index of added) collection.indexes.set(index.name, index);
    return {
      numIndexesBefore: before,
      numIndexesAfter: collection.indexes.size,
      ...(added.length === 0 ? { note: "all indexes already exist" } : {}),
      createdCollectionAutomatically: created,
      ok: 1,
    };
  }

  private listIndexes(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "listIndexes");
    const cursor = optDoc(cmd, "cursor", "listIndexes") ?? {};
    checkFields(cursor, ["batchSize"], "listIndexes.cursor");
    const collection = this.collection(ctx.db, name, false);
    if (!collection) throw new CommandError(26, `ns does not exist: ${ctx.db}.${name}`);
    const docs = [...collection.indexes.values()].map((index) => ({
      v: 2,
      key: index.key,
      name: index.name,
      ...(index.unique ? { unique: true } : {}),
      ...(index.sparse ? { sparse: true } : {}),
      ...(index.partialFilterExpression ? { partialFilterExpression: index.partialFilterExpression } : {}),
      ...(index.expireAfterSeconds !== undefined ? { expireAfterSeconds: index.expireAfterSeconds } : {}),
    }));
    return this.cursorReply(collection.ns, docs, optCount(cursor, "batchSize", "listIndexes.cursor"), false);
  }

  private listCollections(cmd: Document, ctx: Context): Document {
    const filter = optDoc(cmd, "filter", "listCollections");
    const nameOnly = optBool(cmd, "nameOnly", "listCollections");
    const cursor = optDoc(cmd, "cursor", "listCollections") ?? {};
    checkFields(cursor, ["batchSize"], "listCollections.cursor");
    const matcher = query(filter);
    const docs = [...(this.dbs.get(ctx.db)?.keys() ?? [])]
      .map((name) => ({
        name,
        type: "collection",
        options: {},
        info: { readOnly: false },
        idIndex: { v: 2, key: { _id: 1 }, name: ID_INDEX_NAME },
      }))
      .filter((doc) => matcher.test(doc))
      .map((doc) => (nameOnly ? { name: doc.name, type: doc.type } : doc));
    return this.cursorReply(`${ctx.db}.$cmd.listCollections`, docs, optCount(cursor, "batchSize", "listCollections.cursor"), false);
  }

  private create(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "create");
    if (this.collection(ctx.db, name, false)) throw new CommandError(48, `Collection ${ctx.db}.${name} already exists.`);
    this.collection(ctx.db, name, true);
    return { ok: 1 };
  }

  private drop(cmd: Document, ctx: Context): Document {
    const name = collectionName(cmd, "drop");
    const collection = this.collection(ctx.db, name, false);
    if (!collection) return { ok: 1 };
    this.dbs.get(ctx.db)!.delete(name);
    return { nIndexesWas: collection.indexes.size, ns: collection.ns, ok: 1 };
  }
}

// ---------------------------------------------------------------------------------------------
// Wire protocol

class ProtocolError extends Error {}

function readDocument(message: Buffer, offset: number): { doc: Document; end: number } {
  if (offset + 4 > message.length) throw new ProtocolError("truncated document");
  const size = message.readInt32LE(offset);
  if (size < 5 || offset + size > message.length) throw new ProtocolError("bad document size");
  return { doc: deserialize(message.subarray(offset, offset + size)), end: offset + size };
}

function parseOpMsg(message: Buffer): { flags: number; body: Document } {
  const flags = message.readUInt32LE(16);
  const end = flags & CHECKSUM_PRESENT ? message.length - 4 : message.length;
  let pos = 20;
  let body: Document | undefined;
  const sequences: [string, Document[]][] = [];
  while (pos < end) {
    const kind = message[pos++];
    if (kind === 0) {
      if (body) throw new ProtocolError("more than one body section");
      ({ doc: body, end: pos } = readDocument(message, pos));
    } else if (kind === 1) {
      const sectionEnd = pos + message.readInt32LE(pos);
      const nul = message.indexOf(0, pos + 4);
      if (sectionEnd > end || nul < 0 || nul >= sectionEnd) throw new ProtocolError("bad document sequence");
      const identifier = message.toString("utf8", pos + 4, nul);
      const docs: Document[] = [];
      for (let p = nul + 1; p < sectionEnd; ) {
        const { doc, end: next } = readDocument(message, p);
        docs.push(doc);
        p = next;
      }
      sequences.push([identifier, docs]);
      pos = sectionEnd;
    } else {
      throw new ProtocolError(`unknown section kind ${kind}`);
    }
  }
  if (!body) throw new ProtocolError("no body section");
  for (const [identifier, docs] of sequences) {
    if (Object.hasOwn(body, identifier)) throw new ProtocolError(`duplicate field ${identifier}`);
    body[identifier] = docs;
  }
  return { flags, body };
}

function parseOpQuery(message: Buffer): { db: string; query: Document } {
  const nul = message.indexOf(0, 20);
  if (nul < 0) throw new ProtocolError("bad collection name");
  const fullName = message.toString("utf8", 20, nul);
  let { doc: query } = readDocument(message, nul + 9);
  if (isPlainObject(query.$query)) query = query.$query;
  return { db: fullName.split(".")[0], query };
}

function serializeReply(doc: Document): Uint8Array {
  try {
    return serialize(doc);
  } catch (error) {
    const { message } = toCommandError(error);
    return serialize(errorDoc(1, `mongo-double could not encode the reply: ${message}`));
  }
}

function encodeMessage(opCode: number, requestId: number, responseTo: number, prefix: Buffer, doc: Document): Buffer {
  const body = serializeReply(doc);
  const header = Buffer.alloc(16);
  header.writeInt32LE(16 + prefix.length + body.length, 0);
  header.writeInt32LE(requestId, 4);
  header.writeInt32LE(responseTo, 8);
  header.writeInt32LE(opCode, 12);
  return Buffer.concat([header, prefix, body]);
}

const HELLO_NAMES = new Set(["hello", "isMaster", "ismaster"]);

/** Handles one whole message: the bytes to answer, nothing (moreToCome), or CLOSE. */
function handleMessage(engine: Engine, message: Buffer, connectionId: number, requestId: number): Buffer | undefined | typeof CLOSE {
  const responseTo = message.readInt32LE(4);
  const opCode = message.readInt32LE(12);
  try {
    if (opCode === OP_MSG) {
      const { flags, body } = parseOpMsg(message);
      const reply = engine.execute(body, body.$db, connectionId);
      if (reply === CLOSE) return CLOSE;
      if (flags & MORE_TO_COME) return undefined;
      // flagBits 0, then section kind 0.
      return encodeMessage(OP_MSG, requestId, responseTo, Buffer.alloc(5), reply);
    }
    if (opCode === OP_QUERY) {
      const { db, query } = parseOpQuery(message);
      const name = Object.keys(query)[0] ?? "";
      const reply = HELLO_NAMES.has(name)
        ? engine.execute({ ...query, $db: db }, db, connectionId)
        : errorDoc(352, `mongo-double accepts OP_QUERY only for the hello handshake, not '${name}'`);
      if (reply === CLOSE) return CLOSE;
      // responseFlags 0, cursorID 0, startingFrom 0, numberReturned 1.
      const prefix = Buffer.alloc(20);
      prefix.writeInt32LE(1, 16);
      return encodeMessage(OP_REPLY, requestId, responseTo, prefix, reply);
    }
  } catch (error) {
    if (error instanceof ProtocolError || (error instanceof Error && error.name === "BSONError")) return CLOSE;
    throw error;
  }
  return CLOSE;
}

/** Starts a double on 127.0.0.1. */
export async function startMongoDouble(options: MongoDoubleOptions = {}): Promise<MongoDouble> {
  const engine = new Engine();
  const sockets = new Set<Socket>();
  let connections = 0;
  let requests = 0;

  const server = createServer((socket) => {
    const connectionId = ++connections;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
    // Clients reset connections when they close; there is nothing to report.
    socket.on("error", () => {});
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && !socket.destroyed) {
        const length = pending.readInt32LE(0);
        if (length < 16 || length > MAX_MESSAGE_SIZE) {
          socket.destroy();
          return;
        }
        if (pending.length < length) return;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        const reply = handleMessage(engine, message, connectionId, ++requests);
        if (reply === CLOSE) socket.destroy();
        else if (reply) socket.write(reply);
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    uri: `mongodb://127.0.0.1:${port}/?directConnection=true`,
    commandCounts: () => ({ ...engine.counts }),
    failNext: (name, n, kind) => engine.failNext(name, n, kind),
    reset: () => engine.reset(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const port = process.env.PORT ? Number(process.env.PORT) : undefined;
  const double = await startMongoDouble({ port });
  console.log(double.uri);
  const stop = () => void double.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
