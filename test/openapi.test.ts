import { dereference, validate } from "@readme/openapi-parser";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import type * as z from "zod";
import type * as api from "../src/api-schemas.ts";
import type { Health, MessageView, ScheduleView, TopicPolicy, TopicView } from "../src/engine/api.ts";
import type { ErrorCode } from "../src/errors.ts";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { flakyStore, type StoreMethod } from "./support/flaky-store.ts";

/*
 * GET /openapi.json is checked with a well-kept OpenAPI parser, then every documented operation is
 * called on the app and every answer is checked against the document: its status must be listed
 * for the operation, and its body must match that status's schema. At the end, every status the
 * document lists for every operation must have been seen.
 */

const TOKEN = "s3cret-token";
const store = flakyStore(memoryStore());
const pitstop = createPitstop({ store, lockTime: "PT30S", log: () => {} });
const app = createApp(pitstop, { token: TOKEN, maxBodyBytes: 2048, log: () => {} });
afterAll(() => pitstop.close());

type Operation = { responses: Record<string, { content?: Record<string, { schema: object }> }>; requestBody?: unknown; security?: unknown[] };
let document: { paths: Record<string, Record<string, Operation>> };
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const validators = new Map<object, ValidateFunction>();
/** Statuses seen per operation ("POST /messages/{id}/ack"). */
const seen = new Map<string, Set<number>>();

beforeAll(async () => {
  const answer = await app.request("/openapi.json");
  expect(answer.status).toBe(200);
  document = await dereference(structuredClone(await answer.json()));
});

const fill = (path: string) => path.replace("{id}", "a").replace("{name}", "jobs");

/**
 * Sends `op` ("METHOD /path/{id}") to `url` (default: the path with `a` and `jobs` filled in) and
 * checks the answer against the document; answers the status and the parsed JSON body.
 */
async function call(op: string, options: { url?: string; body?: unknown; auth?: boolean; type?: string } = {}): Promise<{ status: number; json: any }> {
  const [method, path] = op.split(" ") as [string, string];
  const operation = document.paths[path]?.[method.toLowerCase()];
  expect(operation, `${op} is not in the document`).toBeDefined();
  const headers: Record<string, string> = options.auth === false ? {} : { authorization: `Bearer ${TOKEN}` };
  if (options.body !== undefined) headers["content-type"] = options.type ?? "application/json";
  const body = options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  const controller = new AbortController();
  const answer = await app.request(options.url ?? fill(path), { method, headers, body, signal: controller.signal });
  const documented = operation!.responses[String(answer.status)];
  expect(documented, `${op} answered ${answer.status}, which the document does not list`).toBeDefined();
  seen.set(op, (seen.get(op) ?? new Set()).add(answer.status));
  const media = answer.headers.get("content-type")?.split(";")[0];
  if (media === "text/event-stream") {
    expect(Object.keys(documented!.content ?? {})).toEqual(["text/event-stream"]);
    controller.abort();
    await answer.body?.cancel();
    return { status: answer.status, json: undefined };
  }
  const text = await answer.text();
  if (!documented!.content) {
    expect(text, `${op} ${answer.status} has a body the document does not describe`).toBe("");
    return { status: answer.status, json: undefined };
  }
  expect(media).toBe("application/json");
  const json = JSON.parse(text);
  const schema = documented!.content["application/json"]!.schema;
  let check = validators.get(schema);
  if (!check) validators.set(schema, (check = ajv.compile(schema)));
  expect(check(json) ? [] : check.errors, `${op} ${answer.status}: ${text}`).toEqual([]);
  return { status: answer.status, json };
}

const operations = () => Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ op: `${method.toUpperCase()} ${path}`, operation })));
/** A body each operation accepts (so that a failing store, not validation, decides its answer). */
const validBody: Record<string, unknown> = {
  "POST /messages": { message: {} },
  "POST /messages/batch": { messages: [{ message: {} }, { message: "not an object" }] },
  "POST /schedules/preview": { interval: "PT1H" },
  "POST /messages/{id}/ack": { token: "t" },
  "POST /messages/{id}/nack": { token: "t" },
  "POST /messages/{id}/extend": { token: "t" },
  "PUT /topics/{name}": { ordered: true },
  "POST /acks": { acks: [{ id: "a", token: "t" }] },
  "POST /tickets": {},
};
const longName = "x".repeat(300);

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document, served without the token", async () => {
    const answer = await app.request("/openapi.json");
    const raw = await answer.json();
    expect(raw.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(raw));
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(operations().length).toBe(20);
    expect(raw.paths["/events"].get.parameters.map((p: { name: string }) => p.name)).toEqual(["topic", "ticket", "consumer", "prefetch"]);
  });

  it("lists no 401 and no security when no token is set, and no POST /tickets", async () => {
    const open = createApp(pitstop, { log: () => {} });
    const doc = await (await open.request("/openapi.json")).json();
    expect(doc.security).toEqual([]);
    expect(doc.paths["/tickets"]).toBeUndefined();
    expect(Object.values(doc.paths).flatMap((methods: any) => Object.values(methods).filter((op: any) => op.responses["401"]))).toEqual([]);
    expect((await validate(doc)).valid).toBe(true);
  });

  it("describes the answer of every operation: successes", async () => {
    expect((await call("GET /health")).json).toEqual({ ok: true, store: "memory" });
    const at = new Date(Date.now() + 3_600_000).toISOString();
    expect((await call("POST /messages", { body: { message: { id: "a", n: 1 }, at, topic: "jobs", interval: "PT1H" } })).status).toBe(201);
    expect((await call("POST /messages", { body: { message: { id: "a", n: 2 }, at, topic: "jobs", interval: "PT1H" } })).status).toBe(200);
    expect((await call("POST /messages/batch", { body: { messages: [{ message: { id: "b1" }, at, topic: "batch" }, { message: "no" }] } })).json.results).toEqual([
      { id: "b1", status: 201 },
      expect.objectContaining({ error: "invalid_request", index: 1 }),
    ]);
    expect((await call("GET /messages", { url: "/messages?topic=jobs&limit=1" })).json.items).toHaveLength(1);
    expect((await call("POST /schedules/preview", { body: { cron: "0 9 * * *", count: 2 } })).json.occurrences).toHaveLength(2);
    expect((await call("GET /messages/{id}")).json).toMatchObject({ id: "a", state: "pending", upcoming: expect.any(Array) });
    expect((await call("PUT /topics/{name}", { body: { maxAttempts: 3, backoff: { base: "PT1S" } } })).json.maxAttempts).toBe(3);
    expect((await call("GET /topics/{name}")).json).toMatchObject({ name: "jobs", counts: { pending: 1 } });
    expect((await call("GET /topics")).json.items.map((t: { name: string }) => t.name)).toContain("jobs");
    expect((await call("DELETE /topics/{name}/policy")).status).toBe(204);
    expect((await call("DELETE /messages/{id}")).status).toBe(204);

    // A delivery to ack, extend and nack; a dead letter to redrive and purge.
    await call("POST /messages", { body: { message: { id: "d1" }, topic: "work" } });
    await call("POST /messages", { body: { message: { id: "d2" }, topic: "work" } });
    const [d1, d2] = await pitstop.claim({ topic: "work", limit: 2 });
    expect((await call("POST /messages/{id}/extend", { url: `/messages/${d1!.id}/extend`, body: { token: d1!.token, by: "PT1M" } })).json.lockedUntil).toEqual(expect.any(String));
    expect((await call("POST /messages/{id}/ack", { url: `/messages/${d1!.id}/ack`, body: { token: d1!.token } })).status).toBe(204);
    expect((await call("POST /messages/{id}/nack", { url: `/messages/${d2!.id}/nack`, body: { token: d2!.token, final: true, error: "boom" } })).status).toBe(204);
    expect((await call("POST /messages/{id}/redrive", { url: `/messages/${d2!.id}/redrive` })).json).toMatchObject({ id: d2!.id, state: "pending" });
    const [again] = await pitstop.claim({ topic: "work", limit: 1 });
    await again!.nack({ final: true });
    expect((await call("POST /topics/{name}/redrive", { url: "/topics/work/redrive" })).json).toEqual({ redriven: 1 });
    const [third] = await pitstop.claim({ topic: "work", limit: 1 });
    await third!.nack({ final: true });
    expect((await call("DELETE /topics/{name}/dead", { url: "/topics/work/dead" })).json).toEqual({ removed: 1 });
    expect((await call("POST /acks", { body: { acks: [{ id: "gone", token: "t" }] } })).json).toEqual({ acked: 0, failed: [{ id: "gone", error: "not_found" }] });
    expect((await call("POST /tickets", { body: { topic: "jobs", ttl: "PT2M" } })).json.ticket).toEqual(expect.any(String));
    expect((await call("GET /events", { url: "/events?topic=jobs" })).status).toBe(200);
  });

  it("describes the answer of every operation: their own errors", async () => {
    const bad = async (op: string, status: number, options: Parameters<typeof call>[1]) => expect((await call(op, options)).status, op).toBe(status);
    await bad("POST /messages", 400, { body: { at: 1 } });
    await bad("POST /messages/batch", 400, { body: { messages: [] } });
    await bad("GET /messages", 400, { url: "/messages?state=nope" });
    await bad("POST /schedules/preview", 400, { body: { count: 0 } });
    await bad("GET /messages/{id}", 404, { url: "/messages/nope" });
    await bad("GET /messages/{id}", 400, { url: `/messages/${longName}` });
    await bad("DELETE /messages/{id}", 404, { url: "/messages/nope" });
    await bad("DELETE /messages/{id}", 400, { url: `/messages/${longName}` });
    for (const action of ["ack", "nack", "extend"]) {
      await bad(`POST /messages/{id}/${action}`, 404, { url: `/messages/nope/${action}`, body: { token: "t" } });
      await bad(`POST /messages/{id}/${action}`, 400, { body: { token: "" } });
    }
    await call("POST /messages", { body: { message: { id: "held" }, topic: "held" } });
    await pitstop.claim({ topic: "held", limit: 1 });
    for (const action of ["ack", "nack", "extend"]) await bad(`POST /messages/{id}/${action}`, 409, { url: `/messages/held/${action}`, body: { token: "stale" } });
    await bad("POST /messages/{id}/redrive", 409, { url: "/messages/held/redrive" });
    await bad("POST /messages/{id}/redrive", 404, { url: "/messages/nope/redrive" });
    await bad("POST /messages/{id}/redrive", 400, { url: "/messages/held/redrive", body: { at: true } });
    await bad("GET /topics/{name}", 404, { url: "/topics/empty" });
    await bad("GET /topics/{name}", 400, { url: `/topics/${longName}` });
    await bad("PUT /topics/{name}", 400, { body: { nope: 1 } });
    await bad("DELETE /topics/{name}/policy", 400, { url: `/topics/${longName}/policy` });
    await bad("POST /topics/{name}/redrive", 400, { url: `/topics/${longName}/redrive` });
    await bad("DELETE /topics/{name}/dead", 400, { url: `/topics/${longName}/dead` });
    await bad("POST /acks", 400, { body: { acks: [] } });
    await bad("POST /tickets", 400, { body: { ttl: "PT10M" } });
    await bad("GET /events", 400, { url: "/events?prefetch=0" });
  });

  it("describes the errors every operation shares: 401, 413, 415 and 503", async () => {
    for (const { op, operation } of operations()) {
      const body = validBody[op];
      if (operation.security?.length !== 0) expect((await call(op, { auth: false, body })).status, op).toBe(401);
      if (operation.requestBody) {
        expect((await call(op, { body: { pad: "x".repeat(40_000) } })).status, op).toBe(413);
        expect((await call(op, { body: "x", type: "text/plain" })).status, op).toBe(415);
      }
    }
    const methods: StoreMethod[] = ["put", "putMany", "get", "remove", "claim", "settle", "nextDueAt", "list", "countLanes", "move", "laneIds", "policies", "setPolicy", "ping"];
    for (const method of methods) store.failing.add(method);
    try {
      for (const { op, operation } of operations()) if (operation.responses["503"]) expect((await call(op, { body: validBody[op] })).status, op).toBe(503);
    } finally {
      store.failing.clear();
    }
  });

  it("saw every status the document lists, for every operation", () => {
    const missing = operations().flatMap(({ op, operation }) => Object.keys(operation.responses).filter((status) => !seen.get(op)?.has(Number(status))).map((status) => `${op} ${status}`));
    expect(missing).toEqual([]);
  });
});

describe("response schemas", () => {
  it("have the engine's view types (checked by tsc)", () => {
    // `message` differs only in how the index signature reads (any JSON object with a string id).
    expectTypeOf<Omit<z.output<typeof api.messageResponse>, "message">>().toEqualTypeOf<Omit<MessageView, "message">>();
    expectTypeOf<MessageView["message"]>().toExtend<z.output<typeof api.messageResponse>["message"]>();
    expectTypeOf<z.output<typeof api.scheduleResponse>>().toEqualTypeOf<ScheduleView>();
    expectTypeOf<z.output<typeof api.topicResponse>>().toEqualTypeOf<TopicView>();
    expectTypeOf<z.output<typeof api.policyResponse>>().toEqualTypeOf<TopicPolicy>();
    expectTypeOf<z.output<typeof api.healthResponse>>().toEqualTypeOf<Health>();
    expectTypeOf<z.output<typeof api.errorResponse>["error"]>().toEqualTypeOf<ErrorCode>();
  });
});
