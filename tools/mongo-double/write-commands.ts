/** Commands that write documents: insert, update, delete, findAndModify. */
import { ObjectId, type Document } from "bson";
import { checkFields, collectionName, docArray, optBool, optDoc, optNumber } from "./arguments.ts";
import { project, selectIn } from "./collection.ts";
import type { CommandDef, Context, Engine } from "./engine.ts";
import { CommandError, eachWrite } from "./errors.ts";
import { checkStorable, checkUpdateSpec, isOperatorUpdate, modify, upsertDoc } from "./update.ts";
import { formatValue, sameBson, withIdFirst } from "./values.ts";

function insert(engine: Engine, cmd: Document, ctx: Context): Document {
  const name = collectionName(cmd, "insert");
  const docs = docArray(cmd, "documents", "insert");
  const ordered = cmd.ordered === undefined ? true : optBool(cmd, "ordered", "insert");
  const collection = engine.collection(ctx.db, name, true)!;
  let n = 0;
  const errors = eachWrite(docs, ordered, (input) => {
    const doc = withIdFirst(input._id === undefined ? { _id: new ObjectId(), ...input } : input);
    checkStorable(doc);
    collection.commit(undefined, doc);
    n++;
  });
  return { n, ...errors, ok: 1 };
}

function update(engine: Engine, cmd: Document, ctx: Context): Document {
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
    const existing = engine.collection(ctx.db, name, false);
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
      engine.collection(ctx.db, name, true)!.commit(undefined, doc);
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

function deleteCommand(engine: Engine, cmd: Document, ctx: Context): Document {
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
    const collection = engine.collection(ctx.db, name, false);
    for (const doc of selectIn(collection, stmt.filter, undefined, "", stmt.limit)) {
      collection!.commit(doc, undefined);
      n++;
    }
  });
  return { n, ...errors, ok: 1 };
}

function findAndModify(engine: Engine, cmd: Document, ctx: Context): Document {
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

  const existing = engine.collection(ctx.db, name, false);
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
  engine.collection(ctx.db, name, true)!.commit(undefined, doc);
  return {
    lastErrorObject: { n: 1, updatedExisting: false, upserted: doc._id },
    value: returnNew ? value(doc) : null,
    ok: 1,
  };
}

/** Write commands by name, with the options each accepts. */
export const writeCommands: Record<string, CommandDef> = {
  insert: { options: ["documents", "ordered", "bypassDocumentValidation"], run: insert },
  update: { options: ["updates", "ordered", "bypassDocumentValidation"], run: update },
  delete: { options: ["deletes", "ordered"], run: deleteCommand },
  findAndModify: {
    options: ["query", "sort", "remove", "update", "new", "upsert", "fields", "arrayFilters", "bypassDocumentValidation", "hint"],
    run: findAndModify,
  },
};
