/** A collection: its documents in natural order, unique indexes, and filtered, sorted selection. */
import { MinKey, serialize, type Document } from "bson";
import { Query } from "mingo";
import { CommandError } from "./errors.ts";
import { firstMatches, parseSort, type SortField } from "./order.ts";
import { EMPTY_ARRAY, MISSING, bsonType, cloneDoc, formatValue, isPlainObject, pathValues, withIdFirst } from "./values.ts";

export interface Index {
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

export const ID_INDEX_NAME = "_id_";

export function normalizeKeyValue(value: unknown): unknown {
  if (value === MISSING || value === undefined) return null;
  if (value === EMPTY_ARRAY) return new MinKey();
  if (Object.is(value, -0)) return 0;
  return value;
}

export function encodeKey(values: unknown[]): string {
  return Buffer.from(serialize({ k: values.map(normalizeKeyValue) })).toString("latin1");
}

/** Encoded keys a document has in a unique index (none when sparse or partial excludes it). */
export function indexKeys(index: Index, doc: Document): string[] {
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

export class Collection {
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
export function selectIn(collection: Collection | undefined, filter: Document | undefined, sort?: Document, where = "sort", count = 0): Document[] {
  const matcher = query(filter);
  const fields = sort ? parseSort(sort, where) : [];
  return collection ? collection.select(filter, matcher, fields, count) : [];
}

export interface Matcher {
  test(doc: Document): boolean;
}

export function query(filter: Document | undefined): Matcher {
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

export function project(docs: Document[], projection: Document | undefined, filter?: Document): Document[] {
  if (!projection || Object.keys(projection).length === 0) return docs;
  // mingo projections may modify their input, and inputs are stored documents.
  return new Query(filter ?? {})
    .find<Document>(docs.map(cloneDoc), projection)
    .all()
    .map(withIdFirst);
}
