/** Commands on collections, indexes and databases: createIndexes, listIndexes, listCollections, create, drop, dropDatabase. */
import type { Document } from "bson";
import { checkFields, collectionName, docArray, optBool, optCount, optDoc, optNumber } from "./arguments.ts";
import { ID_INDEX_NAME, encodeKey, indexKeys, query, type Index } from "./collection.ts";
import type { CommandDef, Context, Engine } from "./engine.ts";
import { CommandError } from "./errors.ts";
import { formatValue, isNumeric, toNumber } from "./values.ts";

function createIndexes(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "createIndexes");
  const specs = docArray(cmd, "indexes", "createIndexes");
  if (specs.length === 0) throw new CommandError(2, "Must specify at least one index to create");
  const created = !engine.collection(ctx.db, name, false);
  const collection = engine.collection(ctx.db, name, true)!;
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

function listIndexes(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "listIndexes");
  const cursor = optDoc(cmd, "cursor", "listIndexes") ?? {};
  checkFields(cursor, ["batchSize"], "listIndexes.cursor");
  const collection = engine.collection(ctx.db, name, false);
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
  return engine.cursorReply(collection.ns, docs, optCount(cursor, "batchSize", "listIndexes.cursor"), false);
}

function listCollections(engine: Engine, cmd: Document, ctx: Context): Document {
  const filter = optDoc(cmd, "filter", "listCollections");
  const nameOnly = optBool(cmd, "nameOnly", "listCollections");
  const cursor = optDoc(cmd, "cursor", "listCollections") ?? {};
  checkFields(cursor, ["batchSize"], "listCollections.cursor");
  const matcher = query(filter);
  const docs = [...(engine.dbs.get(ctx.db)?.keys() ?? [])]
    .map((name) => ({
      name,
      type: "collection",
      options: {},
      info: { readOnly: false },
      idIndex: { v: 2, key: { _id: 1 }, name: ID_INDEX_NAME },
    }))
    .filter((doc) => matcher.test(doc))
    .map((doc) => (nameOnly ? { name: doc.name, type: doc.type } : doc));
  return engine.cursorReply(`${ctx.db}.$cmd.listCollections`, docs, optCount(cursor, "batchSize", "listCollections.cursor"), false);
}

function create(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "create");
  if (engine.collection(ctx.db, name, false)) throw new CommandError(48, `Collection ${ctx.db}.${name} already exists.`);
  engine.collection(ctx.db, name, true);
  return { ok: 1 };
}

function drop(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "drop");
  const collection = engine.collection(ctx.db, name, false);
  if (!collection) return { ok: 1 };
  engine.dbs.get(ctx.db)!.delete(name);
  return { nIndexesWas: collection.indexes.size, ns: collection.ns, ok: 1 };
}

/** Collection, index and database commands by name, with the options each accepts. */
export const adminCommands: Record<string, CommandDef> = {
  createIndexes: { options: ["indexes", "commitQuorum"], run: createIndexes },
  listIndexes: { options: ["cursor"], run: listIndexes },
  listCollections: { options: ["filter", "nameOnly", "authorizedCollections", "cursor"], run: listCollections },
  create: { options: [], run: create },
  drop: { options: [], run: drop },
  dropDatabase: { options: [], run: (engine, _cmd, ctx) => (engine.dbs.delete(ctx.db), { ok: 1 }) },
};
