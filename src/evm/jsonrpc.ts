import { RpcError } from "./errors.ts";
import { METHODS, type MethodContext, PRIMARY_METHODS } from "./methods.ts";
import { PRIVATE_METHODS, PRIVATE_PRIMARY_METHODS } from "./private/index.ts";

/** At most this many calls in one batch. */
export const MAX_BATCH = 1000;

type Response = {
  jsonrpc: "2.0";
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: string };
};

const decoder = new TextDecoder("utf-8", { fatal: true });

type Parsed = { ok: true; value: unknown } | { ok: false };
/** A body is parsed once: rpc asks `needsPrimary` before the handler answers the same bytes. */
const parsedBodies = new WeakMap<Uint8Array, Parsed>();

function parse(body: Uint8Array): Parsed {
  const known = parsedBodies.get(body);
  if (known) return known;
  let parsed: Parsed;
  try {
    parsed = { ok: true, value: JSON.parse(decoder.decode(body)) };
  } catch {
    parsed = { ok: false };
  }
  parsedBodies.set(body, parsed);
  return parsed;
}

/**
 * True when some call in the body must run on the primary: a write, filter state, or an account's
 * `pending` nonce. The pending state is the primary's (it executes every transaction), and clients
 * read that nonce to sign their next transaction: a backup a moment behind would hand out a used
 * one. Every other read is answered by the node asked.
 */
export function needsPrimary(body: Uint8Array): boolean {
  const parsed = parse(body);
  if (!parsed.ok) return false;
  const calls = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
  return calls.some((c) => {
    if (typeof c !== "object" || c === null) return false;
    const { method, params } = c as { method?: unknown; params?: unknown };
    if (PRIMARY_METHODS.has(method as string) || PRIVATE_PRIMARY_METHODS.has(method as string)) return true;
    return method === "eth_getTransactionCount" && Array.isArray(params) && params[1] === "pending";
  });
}

function failure(id: unknown, code: number, message: string, data?: string): Response {
  return { jsonrpc: "2.0", id, error: data === undefined ? { code, message } : { code, message, data } };
}

const validId = (id: unknown) => id === null || typeof id === "string" || typeof id === "number";

async function one(ctx: MethodContext, call: unknown): Promise<Response | undefined> {
  if (typeof call !== "object" || call === null || Array.isArray(call))
    return failure(null, -32600, "invalid request");
  const c = call as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  const notification = !("id" in c);
  const id = validId(c.id) ? c.id : null;
  if (c.jsonrpc !== "2.0" || typeof c.method !== "string" || (!notification && !validId(c.id))) {
    return failure(id, -32600, "invalid request");
  }
  if (c.params !== undefined && !Array.isArray(c.params)) {
    return failure(id, -32602, "invalid params: expected an array");
  }
  const method = Object.hasOwn(PRIVATE_METHODS, c.method)
    ? PRIVATE_METHODS[c.method]
    : Object.hasOwn(METHODS, c.method)
      ? METHODS[c.method]
      : undefined;
  let response: Response;
  if (!method) response = failure(id, -32601, `the method ${c.method} does not exist/is not available`);
  else {
    try {
      response = { jsonrpc: "2.0", id, result: await method(ctx, (c.params as unknown[] | undefined) ?? []) };
    } catch (e) {
      if (e instanceof RpcError) response = failure(id, e.code, e.message, e.data);
      else throw e;
    }
  }
  return notification ? undefined : response;
}

/**
 * Answers a JSON-RPC 2.0 body (one call or a batch). Calls run in order in one KV transaction, so
 * the transactions of a batch commit together. Errors of the protocol are answers, never throws.
 */
export async function answer(ctx: MethodContext, body: Uint8Array): Promise<unknown> {
  const parsed = parse(body);
  if (!parsed.ok) return failure(null, -32700, "parse error");
  if (!Array.isArray(parsed.value)) return (await one(ctx, parsed.value)) ?? null;
  if (parsed.value.length === 0) return failure(null, -32600, "invalid request: empty batch");
  if (parsed.value.length > MAX_BATCH)
    return failure(null, -32600, `invalid request: more than ${MAX_BATCH} calls`);
  const out: Response[] = [];
  for (const call of parsed.value) {
    const r = await one(ctx, call);
    if (r) out.push(r);
  }
  return out.length === 0 ? null : out;
}
