/**
 * The wire protocol: OP_MSG requests and replies, OP_QUERY only for the first handshake (answered
 * with OP_REPLY); anything else closes the connection.
 */
import { deserialize, serialize, type Document } from "bson";
import { CLOSE, type Engine } from "./engine.ts";
import { errorDoc, toCommandError } from "./errors.ts";
import { isPlainObject } from "./values.ts";

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;

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
export function handleMessage(engine: Engine, message: Buffer, connectionId: number, requestId: number): Buffer | undefined | typeof CLOSE {
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
