// Runs one request against an installed JS endpoint: builds CCF's request record, binds the
// `ccf` global's per-request services, calls the function in the sandbox and turns its result
// (or its failure) into an answer.
import type { Logger } from "pino";
import {
  type AppResponse,
  type HandlerContext,
  type OutboundRequest,
  RerunWithFetched,
} from "../apps/index.ts";
import {
  type JsEngine,
  JsError,
  type JsHistoricalState,
  type JsHooks,
  type JsLogLevel,
} from "../js/index.ts";
import { adapterName } from "./adapter.ts";
import type { JsEndpointInfo } from "./bundle.ts";
import { jsCaller } from "./caller.ts";
import { historicalStateFor, stateRange, TX_ID_HEADER } from "./historical.ts";
import type { JsAppHost } from "./host.ts";
import { appKv } from "./kv.ts";
import { readRuntimeOptions } from "./runtime-options.ts";

export interface HandlerDeps {
  engine: JsEngine;
  log: Logger;
  host(): JsAppHost | undefined;
}

export interface InstalledEndpoint {
  method: string;
  /** The path template below /app. */
  route: string;
  info: JsEndpointInfo;
}

const encoder = new TextEncoder();

function answer(
  status: number,
  contentType: string,
  body: string,
  extra: Record<string, string> = {},
): AppResponse {
  return {
    status,
    headers: { "content-type": contentType, ...extra },
    body: encoder.encode(body),
    applyWrites: false,
  };
}

function errorResponse(status: number, code: string, message: string, details?: unknown[]): AppResponse {
  const error = { code, message, ...(details ? { details } : {}) };
  return answer(status, "application/json", JSON.stringify({ error }));
}

function headersRecord(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** `application/json` and `application/<anything>+json`, with any parameters (as src/rpc/http-checks.ts). */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Why `request.body.json()` must refuse this request's body, or null: a content type other than
 * JSON (no content type is read as JSON, as CCF does). The endpoint may still read the body as
 * text or bytes; only reading it as JSON is refused, with a 415 like the built-in endpoints'.
 */
function jsonRefusal(contentType: string | string[] | undefined): string | null {
  if (contentType === undefined) return null;
  const value = Array.isArray(contentType) ? contentType.join(", ") : contentType;
  if (value.trim() === "" || JSON_TYPE.test(value.trim())) return null;
  return `this endpoint takes application/json, not ${JSON.stringify(value)}`;
}

function needHost(deps: HandlerDeps, what: string): JsAppHost {
  const host = deps.host();
  if (host === undefined)
    throw new Error(`ccf.${what} is not available: this executor is not attached to a node`);
  return host;
}

interface RunFlags {
  applyWrites?: boolean;
  /** A `ccf.host.fetch` the handler asked for that this call has not fetched yet. */
  pendingFetch?: OutboundRequest;
}

/**
 * `ccf.host.fetch`: the sandbox cannot wait, so a request not yet fetched in this call ends the
 * run; the host fetches it and runs the handler again, in a fresh transaction, with the answer.
 */
function hostFetch(ctx: HandlerContext, flags: RunFlags, req: unknown): unknown {
  if (ctx.fetch === undefined || ctx.fetchedBefore === undefined) {
    throw new Error("ccf.host.fetch is not available: this node does not make outbound calls");
  }
  const known = ctx.fetchedBefore(req as OutboundRequest);
  if (known) return { status: known.status, headers: known.headers, body: known.body, digest: known.digest };
  flags.pendingFetch = req as OutboundRequest;
  throw new Error("ccf.host.fetch: the response is being fetched; the handler will run again");
}

function hooksFor(deps: HandlerDeps, ctx: HandlerContext, flags: RunFlags): JsHooks {
  return {
    rpc: {
      setApplyWrites: (force: unknown) => {
        flags.applyWrites = force === true;
      },
      setClaimsDigest: (digest: unknown) => {
        if (!(digest instanceof Uint8Array) || digest.length !== 32) {
          throw new TypeError("ccf.rpc.setClaimsDigest: the digest must be an ArrayBuffer of 32 bytes");
        }
        ctx.setClaimsDigest(digest);
      },
    },
    consensus: {
      getLastCommittedTxId: () => needHost(deps, "consensus").lastCommittedTxId(),
      getStatusForTxId: (view: unknown, seqno: unknown) => {
        if (!Number.isSafeInteger(view) || !Number.isSafeInteger(seqno)) {
          throw new TypeError("ccf.consensus.getStatusForTxId: view and seqno must be integers");
        }
        return needHost(deps, "consensus").txStatus(view as number, seqno as number);
      },
      getViewForSeqno: (seqno: unknown) => {
        if (!Number.isSafeInteger(seqno))
          throw new TypeError("ccf.consensus.getViewForSeqno: seqno must be an integer");
        return needHost(deps, "consensus").viewOf(seqno as number);
      },
    },
    host: {
      fetch: (req: unknown) => hostFetch(ctx, flags, req),
      triggerSubprocess: () => {
        throw new Error("ccf.host.triggerSubprocess is not supported in Coco: apps may not start processes");
      },
    },
    historical: {
      getStateRange: (_handle: unknown, start: unknown, end: unknown) =>
        stateRange(needHost(deps, "historical"), start, end),
      // States are kept by the host's cache, not per handle: nothing to drop here.
      dropCachedStates: () => true,
    },
  };
}

/** Console lines of the request, written to the node log once the answer names its transaction. */
function requestLogger(deps: HandlerDeps, ctx: HandlerContext, endpoint: InstalledEndpoint) {
  const lines: Array<[JsLogLevel, string]> = [];
  const where = { app: "js", endpoint: `${endpoint.method} ${endpoint.route}` };
  const emit = (txid: string | undefined, level: JsLogLevel, message: string) =>
    deps.log[level]({ ...where, ...(txid ? { txid } : {}) }, message);
  if (ctx.onAnswer === undefined)
    return (level: JsLogLevel, message: string) => emit(undefined, level, message);
  ctx.onAnswer((txid) => {
    for (const [level, message] of lines) emit(txid, level, message);
  });
  return (level: JsLogLevel, message: string) => {
    lines.push([level, message]);
  };
}

function failure(
  deps: HandlerDeps,
  e: JsError,
  endpoint: InstalledEndpoint,
  options: ReturnType<typeof readRuntimeOptions>,
) {
  const message =
    e.kind === "budget"
      ? "Operation took too long to complete."
      : e.kind === "memory"
        ? "Operation ran out of memory."
        : e.kind === "stack"
          ? "Operation overflowed its stack."
          : "Exception thrown while executing.";
  const detail = {
    code: e.kind === "exception" ? "JSException" : `JS${e.kind}`,
    message: e.message,
    ...(e.trace ? { trace: e.trace } : {}),
  };
  if (options.logExceptionDetails) {
    deps.log.warn({ app: "js", endpoint: `${endpoint.method} ${endpoint.route}`, ...detail }, message);
  }
  return errorResponse(
    500,
    "InternalError",
    options.returnExceptionDetails ? `${message} ${e.message}` : message,
    options.returnExceptionDetails ? [detail] : undefined,
  );
}

export function runJsEndpoint(
  deps: HandlerDeps,
  modules: Parameters<JsEngine["call"]>[0]["modules"],
  endpoint: InstalledEndpoint,
  ctx: HandlerContext,
): AppResponse | Promise<AppResponse> {
  const flags: RunFlags = {};
  const response = runOnce(deps, modules, endpoint, ctx, flags);
  const pending = flags.pendingFetch;
  if (pending === undefined || ctx.fetch === undefined) return response;
  const fetch = ctx.fetch;
  return (async () => {
    await fetch(pending);
    throw new RerunWithFetched();
  })();
}

function runOnce(
  deps: HandlerDeps,
  modules: Parameters<JsEngine["call"]>[0]["modules"],
  endpoint: InstalledEndpoint,
  ctx: HandlerContext,
  flags: RunFlags,
): AppResponse {
  const { info } = endpoint;
  const options = readRuntimeOptions(ctx.tx);
  let historicalState: JsHistoricalState | undefined;
  if (info.mode === "historical") {
    const found = historicalStateFor(needHost(deps, "historicalState"), ctx.request.headers[TX_ID_HEADER]);
    if ("answer" in found) {
      const { status, headers, body } = found.answer;
      return { status, headers, body, applyWrites: false };
    }
    historicalState = found.state;
  }
  const req = ctx.request;
  const queryAt = req.url.indexOf("?");
  const host = req.headers.host;
  const request = {
    headers: headersRecord(req.headers),
    params: req.params,
    url: req.url,
    path: `/app${req.path}`,
    route: `/app${endpoint.route}`,
    query: queryAt < 0 ? "" : req.url.slice(queryAt + 1),
    method: req.method,
    hostname: typeof host === "string" ? host.replace(/:\d+$/, "") : null,
    body: req.body,
    caller: jsCaller(ctx.caller, ctx.tx, info.authn_policies),
  };
  const refusal = jsonRefusal(req.headers["content-type"]);
  let result: { statusCode?: unknown; headers: Record<string, string>; kind: string; body?: unknown };
  try {
    result = deps.engine.call({
      modules,
      entry: adapterName(info.js_module),
      fn: "invoke",
      args: [info.js_function, request, refusal],
      kv: appKv(ctx.tx),
      readOnly: info.mode !== "readwrite",
      hooks: hooksFor(deps, ctx, flags),
      // One literal, no conditional spreads (each copies into a new object per request): the
      // engine reads an undefined historicalState or context as absent, and fresh as false.
      historicalState,
      limits: options.limits,
      logger: requestLogger(deps, ctx, endpoint),
      context: info.interpreter_reuse ? info.interpreter_reuse.key : undefined,
      fresh: !info.interpreter_reuse,
    }) as typeof result;
  } catch (e) {
    // The endpoint read a non-JSON body as JSON and let the refusal propagate.
    if (refusal !== null && e instanceof JsError && e.message === `UnsupportedContentType: ${refusal}`) {
      return errorResponse(415, "UnsupportedContentType", refusal!);
    }
    if (e instanceof JsError) return failure(deps, e, endpoint, options);
    throw e;
  }
  const status = result.statusCode ?? 200;
  if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599) {
    return errorResponse(
      500,
      "InternalError",
      `the endpoint function returned statusCode ${JSON.stringify(status)}`,
    );
  }
  const headers = { ...result.headers };
  const contentType = (type: string) => {
    if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) headers["content-type"] = type;
  };
  let body: Uint8Array | undefined;
  if (result.kind === "text") {
    contentType("text/plain");
    body = encoder.encode(result.body as string);
  } else if (result.kind === "json") {
    contentType("application/json");
    body = encoder.encode(result.body as string);
  } else if (result.kind === "bytes") {
    contentType("application/octet-stream");
    body = result.body as Uint8Array;
  }
  // Optional fields assigned onto the one answer (absent, not undefined, when unset), not spread.
  const answer: AppResponse = { status: status as number, headers };
  if (body !== undefined) answer.body = body;
  if (flags.applyWrites !== undefined) answer.applyWrites = flags.applyWrites;
  return answer;
}
