/** Update specs (operators, replacements, pipelines): checked, applied to a document, or upserted. */
import { ObjectId, calculateObjectSize, type Document } from "bson";
import { Aggregator, updateOne } from "mingo";
import { cloneDeep, isEqual } from "mingo/util";
import { encodeKey } from "./collection.ts";
import { CommandError } from "./errors.ts";
import { MAX_BSON_SIZE, bsonType, cloneDoc, formatValue, getSimplePath, isNumeric, isPlainObject, setPath, withIdFirst } from "./values.ts";

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

export function checkPipeline(pipeline: unknown, allowed: Set<string>, where: string): Document[] {
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

export function checkStorable(doc: Document): void {
  if (Array.isArray(doc._id)) throw new CommandError(53, "The '_id' value cannot be of type array");
  const size = calculateObjectSize(doc);
  if (size > MAX_BSON_SIZE) {
    throw new CommandError(10334, `Document too large: ${size} bytes, max ${MAX_BSON_SIZE}`);
  }
}

export type UpdateSpec = Document | Document[];

interface ModifyOptions {
  /** Filter that selected the document (for the positional `$` operator). */
  filter: Document;
  arrayFilters?: Document[];
  /** True when the update builds an upserted document ($setOnInsert applies). */
  inserting: boolean;
}

/** Checks the shape of an update spec before any document is touched. */
export function checkUpdateSpec(spec: unknown, where: string): UpdateSpec {
  if (Array.isArray(spec)) return checkPipeline(spec, UPDATE_STAGES, where);
  if (!isPlainObject(spec)) throw new CommandError(14, `${where} must be an object or an array`);
  const keys = Object.keys(spec);
  if (keys.length > 0 && keys[0].startsWith("$")) checkOperators(spec);
  else if (keys.some((key) => key.startsWith("$"))) {
    throw new CommandError(2, `${where}: a replacement document cannot contain '$' fields`);
  }
  return spec;
}

export function isOperatorUpdate(spec: UpdateSpec): boolean {
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
export function modify(old: Document, spec: UpdateSpec, options: ModifyOptions): Document {
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

export function upsertDoc(filter: Document, spec: UpdateSpec, arrayFilters: Document[] | undefined): Document {
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
