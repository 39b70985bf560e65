/**
 * The server side of the double: its databases, open cursors, injected failures and command
 * counts, and the dispatch of one command to its implementation (the command files).
 */
import { Long, calculateObjectSize, type Document } from "bson";
import { adminCommands } from "./admin-commands.ts";
import { checkFields } from "./arguments.ts";
import { Collection } from "./collection.ts";
import { errorDoc, toCommandError } from "./errors.ts";
import { readCommands } from "./read-commands.ts";
import { MAX_BSON_SIZE } from "./values.ts";
import { writeCommands } from "./write-commands.ts";

/**
 * How an injected failure shows: a connection dropped before the command runs (`"network"`) or
 * after it ran with its reply unsent (`"network-after"`), or an `ok: 0` reply with this code.
 */
export type MongoDoubleFailure = "network" | "network-after" | { code: number; message?: string };

/** The largest message the server accepts or sends. */
export const MAX_MESSAGE_SIZE = 48_000_000;
const DEFAULT_FIRST_BATCH = 101;
/** What {@link Engine.execute} returns to have the connection dropped without a reply. */
export const CLOSE = Symbol("close");

/** What a command runs in: the database of the request and the connection it came on. */
export interface Context {
  db: string;
  connectionId: number;
}

interface OpenCursor {
  ns: string;
  docs: Document[];
  pos: number;
}

/** A command: the fields it accepts besides the generic ones, and what it does. */
export interface CommandDef {
  options: readonly string[];
  run(engine: Engine, cmd: Document, ctx: Context): Document;
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

function hello(ctx: Context, legacy: boolean): Document {
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

const serverCommands: Record<string, CommandDef> = {
  hello: { options: HELLO_OPTIONS, run: (_engine, _cmd, ctx) => hello(ctx, false) },
  isMaster: { options: HELLO_OPTIONS, run: (_engine, _cmd, ctx) => hello(ctx, true) },
  ismaster: { options: HELLO_OPTIONS, run: (_engine, _cmd, ctx) => hello(ctx, true) },
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
};

const COMMANDS: Record<string, CommandDef> = { ...serverCommands, ...readCommands, ...writeCommands, ...adminCommands };

/** One double's state; {@link Engine.execute} runs a command against it. */
export class Engine {
  readonly counts: Record<string, number> = {};
  private readonly failures = new Map<string, { remaining: number; kind: MongoDoubleFailure }>();
  readonly dbs = new Map<string, Map<string, Collection>>();
  readonly cursors = new Map<number, OpenCursor>();
  private nextCursorId = 1;

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
    const def = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!def) return errorDoc(59, `no such command: '${name}'`);
    if (typeof db !== "string" || db === "") return errorDoc(40571, "OP_MSG requests require a $db argument");
    try {
      checkFields(cmd, def.options, `command '${name}'`, name);
      return def.run(this, cmd, { db, connectionId });
    } catch (error) {
      const { code, message, extra } = toCommandError(error);
      return errorDoc(code, message, extra);
    }
  }

  /** The collection `name` of `db`; with `create`, made (with its database) when absent. */
  collection(db: string, name: string, create: boolean): Collection | undefined {
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

  /** A command's cursor reply: the first batch, and the cursor kept open when more is left. */
  cursorReply(ns: string, docs: Document[], batchSize: number | undefined, singleBatch: boolean): Document {
    const cursor: OpenCursor = { ns, docs, pos: 0 };
    const firstBatch = this.takeBatch(cursor, batchSize ?? DEFAULT_FIRST_BATCH);
    let id = 0;
    if (cursor.pos < docs.length && !singleBatch) {
      id = this.nextCursorId++;
      this.cursors.set(id, cursor);
    }
    return { cursor: { firstBatch, id: Long.fromNumber(id), ns }, ok: 1 };
  }

  /** The next documents of `cursor`: at most `batchSize`, and under 16 MiB unless one alone is larger. */
  takeBatch(cursor: OpenCursor, batchSize: number): Document[] {
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
}
