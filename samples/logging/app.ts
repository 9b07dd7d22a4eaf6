/**
 * The logging sample: private and public records by numeric id, in the spirit of CCF's logging
 * app. Private records live in the private map `records` (encrypted in the ledger); public ones in
 * `public:records` (in clear, integrity-protected). Keys are big-endian u64, so listings come
 * back in numeric order.
 */
import { createHash } from "node:crypto";
import {
  type App,
  type AppRequest,
  defineApp,
  type EndpointOptions,
  type HandlerContext,
  HttpError,
  stringCodec,
  TypedMap,
  u64Codec,
} from "../../src/apps/index.ts";

const MAX_ID = Number.MAX_SAFE_INTEGER;
const MAX_MESSAGE_BYTES = 64 * 1024;

const write: EndpointOptions = { auth: ["user_cert"], mode: "readwrite" };
const read: EndpointOptions = { auth: ["user_cert"], mode: "readonly" };

function parseId(text: string | null | undefined, name = "id"): number {
  if (text === null || text === undefined)
    throw new HttpError(400, "InvalidQueryParameterValue", `missing ${name}`);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text) || Number(text) > MAX_ID) {
    throw new HttpError(400, "InvalidQueryParameterValue", `${name} must be an integer from 0 to ${MAX_ID}`);
  }
  return Number(text);
}

function idOf(value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string") return parseId(value);
  throw new HttpError(400, "InvalidInput", "id must be a non-negative integer");
}

interface RecordBody {
  id?: unknown;
  msg?: unknown;
  record_claim?: unknown;
}

function parseRecord(request: AppRequest): { msg: string; recordClaim: boolean; id?: unknown } {
  const body = request.json<RecordBody>();
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "InvalidInput", 'body must be a JSON object {"msg": "..."}');
  }
  if (typeof body.msg !== "string") throw new HttpError(400, "InvalidInput", "msg must be a string");
  if (Buffer.byteLength(body.msg) > MAX_MESSAGE_BYTES) {
    throw new HttpError(400, "InvalidInput", `msg is longer than ${MAX_MESSAGE_BYTES} bytes`);
  }
  if (body.record_claim !== undefined && typeof body.record_claim !== "boolean") {
    throw new HttpError(400, "InvalidInput", "record_claim must be a boolean");
  }
  return { msg: body.msg, recordClaim: body.record_claim === true, id: body.id };
}

function records(ctx: HandlerContext, mapName: string): TypedMap<number, string> {
  return new TypedMap(ctx.tx, mapName, u64Codec, stringCodec);
}

function store(ctx: HandlerContext, mapName: string, id: number): { status: number; body: unknown } {
  const { msg, recordClaim } = parseRecord(ctx.request);
  records(ctx, mapName).set(id, msg);
  // The claim is the message itself: its digest goes into the receipt, so a receipt holder can
  // later prove exactly what was recorded.
  if (recordClaim) ctx.setClaimsDigest(createHash("sha256").update(msg).digest());
  return { status: 200, body: true };
}

function addRecordEndpoints(app: App, base: string, mapName: string): void {
  app.put(base, write, (ctx) => store(ctx, mapName, parseId(ctx.request.query.get("id"))));
  app.post(base, write, (ctx) => {
    const { id } = parseRecord(ctx.request);
    return store(ctx, mapName, idOf(id));
  });
  app.get(base, read, (ctx) => {
    const id = parseId(ctx.request.query.get("id"));
    const msg = records(ctx, mapName).get(id);
    if (msg === undefined) throw new HttpError(404, "ResourceNotFound", `no record with id ${id}`);
    return { body: { msg } };
  });
  app.delete(base, write, (ctx) => {
    const id = parseId(ctx.request.query.get("id"));
    if (!records(ctx, mapName).delete(id))
      throw new HttpError(404, "ResourceNotFound", `no record with id ${id}`);
    return { body: true };
  });
  app.get(`${base}/count`, read, (ctx) => ({ body: records(ctx, mapName).size() }));
  // Ordered listing: ids in [from, to), at most `limit`, resumable with the returned `next`.
  app.get(`${base}/range`, { ...read, query: ["from", "to", "limit", "after"] }, (ctx) => {
    const q = ctx.request.query;
    const from = q.has("from") ? parseId(q.get("from"), "from") : undefined;
    const to = q.has("to") ? parseId(q.get("to"), "to") : undefined;
    const limit = q.has("limit") ? parseId(q.get("limit"), "limit") : 100;
    if (limit < 1 || limit > 1000)
      throw new HttpError(400, "InvalidQueryParameterValue", "limit must be 1 to 1000");
    const page = records(ctx, mapName).range({
      start: from,
      end: to,
      limit,
      after: q.get("after") ?? undefined,
    });
    return {
      body: {
        entries: page.entries.map(([id, msg]) => ({ id, msg })),
        ...(page.next === undefined ? {} : { next: page.next }),
      },
    };
  });
}

/**
 * Compare-and-set of a private record, for fault tests that need a CAS register (the nemesis
 * suite): `POST /log/private/cas?id=N {"expected": "<msg>" | null, "msg": "<new>"}` writes `msg`
 * only if the record now holds `expected` (null: no record). Answers `{"swapped": true}`, or
 * `{"swapped": false, "value": <current or null>}` and writes nothing. Send it with
 * `x-coco-read: linearizable` so a failed compare is as current as a linearizable read.
 */
function addCasEndpoint(app: App): void {
  app.post("/log/private/cas", write, (ctx) => {
    const id = parseId(ctx.request.query.get("id"));
    const body = ctx.request.json<{ expected?: unknown; msg?: unknown }>();
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw new HttpError(400, "InvalidInput", 'body must be a JSON object {"expected": ..., "msg": "..."}');
    const { expected, msg } = body;
    if (expected !== null && typeof expected !== "string")
      throw new HttpError(400, "InvalidInput", "expected must be a string or null");
    if (typeof msg !== "string" || Buffer.byteLength(msg) > MAX_MESSAGE_BYTES)
      throw new HttpError(400, "InvalidInput", `msg must be a string of at most ${MAX_MESSAGE_BYTES} bytes`);
    const map = records(ctx, "records");
    const current = map.get(id) ?? null;
    if (current !== expected) return { body: { swapped: false, value: current } };
    map.set(id, msg);
    return { body: { swapped: true } };
  });
}

export const loggingApp = defineApp("logging", (app) => {
  addRecordEndpoints(app, "/log/private", "records");
  addCasEndpoint(app);
  addRecordEndpoints(app, "/log/public", "public:records");
});
