/** Commands that read documents: find, getMore, killCursors, aggregate, count. */
import { Long, type Document } from "bson";
import { Aggregator } from "mingo";
import { checkFields, collectionName, optBool, optCount, optDoc, optNumber } from "./arguments.ts";
import { project, selectIn } from "./collection.ts";
import type { CommandDef, Context, Engine } from "./engine.ts";
import { CommandError } from "./errors.ts";
import { sortDocs } from "./order.ts";
import { checkPipeline } from "./update.ts";
import { cloneDoc, formatValue, isNumeric, isPlainObject, toNumber } from "./values.ts";

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

function find(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "find");
  const filter = optDoc(cmd, "filter", "find");
  const sort = optDoc(cmd, "sort", "find");
  const projection = optDoc(cmd, "projection", "find");
  const skip = optCount(cmd, "skip", "find") ?? 0;
  const limit = optCount(cmd, "limit", "find") ?? 0;
  const batchSize = optCount(cmd, "batchSize", "find");
  const singleBatch = optBool(cmd, "singleBatch", "find");
  let docs = selectIn(engine.collection(ctx.db, name, false), filter, sort, "find.sort", limit > 0 ? skip + limit : 0);
  docs = docs.slice(skip, limit > 0 ? skip + limit : undefined);
  docs = project(docs, projection, filter);
  return engine.cursorReply(`${ctx.db}.${name}`, docs, batchSize, singleBatch);
}

function getMore(engine: Engine, cmd: Document, ctx: Context): Document {
  const id = cmd.getMore;
  if (!isNumeric(id)) throw new CommandError(14, `getMore must be a cursor id, got ${formatValue(id)}`);
  const name = collectionName(cmd, "collection");
  const batchSize = optCount(cmd, "batchSize", "getMore");
  const cursorId = toNumber(id);
  const cursor = engine.cursors.get(cursorId);
  if (!cursor) throw new CommandError(43, `cursor id ${cursorId} not found`);
  const ns = `${ctx.db}.${name}`;
  if (cursor.ns !== ns) {
    throw new CommandError(13, `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`);
  }
  const nextBatch = engine.takeBatch(cursor, batchSize || Infinity);
  const exhausted = cursor.pos >= cursor.docs.length;
  if (exhausted) engine.cursors.delete(cursorId);
  return { cursor: { nextBatch, id: Long.fromNumber(exhausted ? 0 : cursorId), ns }, ok: 1 };
}

function killCursors(engine: Engine, cmd: Document): Document {
  collectionName(cmd, "killCursors");
  if (!Array.isArray(cmd.cursors) || !cmd.cursors.every(isNumeric)) {
    throw new CommandError(14, "killCursors.cursors must be an array of cursor ids");
  }
  const killed: Long[] = [];
  const notFound: Long[] = [];
  for (const id of cmd.cursors) {
    const n = toNumber(id);
    (engine.cursors.delete(n) ? killed : notFound).push(Long.fromNumber(n));
  }
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
}

function aggregate(engine: Engine, cmd: Document, ctx: Context): Document {
  if (typeof cmd.aggregate !== "string") {
    throw new CommandError(2, "mongo-double supports aggregate only on a collection");
  }
  const name = collectionName(cmd, "aggregate");
  const pipeline = checkPipeline(cmd.pipeline, AGGREGATE_STAGES, "aggregate.pipeline");
  const cursor = optDoc(cmd, "cursor", "aggregate");
  if (!cursor) throw new CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument");
  checkFields(cursor, ["batchSize"], "aggregate.cursor");
  const batchSize = optCount(cursor, "batchSize", "aggregate.cursor");
  const collection = engine.collection(ctx.db, name, false);
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
  return engine.cursorReply(`${ctx.db}.${name}`, docs, batchSize, false);
}

function count(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "count");
  const filter = optDoc(cmd, "query", "count");
  const skip = optCount(cmd, "skip", "count") ?? 0;
  const limit = Math.abs(optNumber(cmd, "limit", "count") ?? 0);
  const matched = selectIn(engine.collection(ctx.db, name, false), filter).length;
  const n = Math.max(0, matched - skip);
  return { n: limit > 0 ? Math.min(n, limit) : n, ok: 1 };
}

/** Read commands by name, with the options each accepts. */
export const readCommands: Record<string, CommandDef> = {
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
    run: find,
  },
  getMore: { options: ["collection", "batchSize"], run: getMore },
  killCursors: { options: ["cursors"], run: killCursors },
  aggregate: { options: ["pipeline", "cursor", "allowDiskUse", "hint"], run: aggregate },
  count: { options: ["query", "limit", "skip", "hint"], run: count },
};
