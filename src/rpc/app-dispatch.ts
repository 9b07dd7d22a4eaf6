import type { Logger } from "pino";
import {
  type AppRequest,
  type AppResponse,
  type Caller,
  type Endpoint,
  type EndpointMode,
  type ExecutorRegistry,
  HttpError,
  type HttpMethod,
  RerunWithFetched,
} from "../apps/index.ts";
import { KvError, type Tx } from "../kv/index.ts";
import { type CommitOutcome, NotPrimaryError, ZERO_DIGEST } from "../ledger/index.ts";
import { type AppAnswer, errorAnswer, READ_HEADER, TX_HEADER, WAIT_HEADER } from "./answers.ts";
import { authenticate, onlyCertificates, type Peer } from "./auth.ts";
import type { AuthRequest } from "./auth-policies.ts";
import { waitForCommit } from "./commit-wait.ts";
import { jsonContentTypeProblem, unknownQueryParameter } from "./http-checks.ts";
import { OUTBOUND_RESPONSES, OutboundSession } from "./outbound.ts";
import type { RpcNode } from "./port.ts";

const MAX_ATTEMPTS = 10;
const METHODS = new Set(["GET", "PUT", "POST", "DELETE", "PATCH"]);
const decoder = new TextDecoder("utf-8", { fatal: true });

/** An app request, independent of how it arrived (HTTPS here, or forwarded by a backup). */
export interface AppCall {
  method: string;
  /** Path and query, e.g. `/app/log/private?id=1`. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  peer: Peer;
}

/** Framework maps are written by the node and governance only, never by apps. */
function reservedMap(name: string): boolean {
  return name.startsWith("public:ccf.") || name.startsWith("ccf.") || name.startsWith("public:coco.gov.");
}

function bodyText(body: Uint8Array): string {
  try {
    return decoder.decode(body);
  } catch {
    throw new HttpError(400, "InvalidInput", "request body is not valid UTF-8");
  }
}

/** A no-op release, for requests that hold no exclusive turn. */
function noRelease(): void {}

// Per-request functions here are object methods or module functions, never `const f = () => ...`:
// the node runs under tsx, which keeps function names by a defineProperty on every such closure
// it creates (a measurable share of a request's CPU, BENCHMARKS.md session 5).
function makeRequest(call: AppCall, path: string, params: Record<string, string>): AppRequest {
  const queryIndex = call.url.indexOf("?");
  const body = call.body;
  return {
    method: call.method as HttpMethod,
    path,
    url: call.url,
    params,
    query: new URLSearchParams(queryIndex < 0 ? "" : call.url.slice(queryIndex + 1)),
    headers: call.headers,
    body,
    text(): string {
      return bodyText(body);
    },
    json<T>(): T {
      const problem = jsonContentTypeProblem(call.headers["content-type"]);
      if (problem) throw new HttpError(415, "UnsupportedContentType", problem);
      try {
        return JSON.parse(bodyText(body)) as T;
      } catch (e) {
        if (e instanceof HttpError) throw e;
        throw new HttpError(400, "InvalidInput", `request body is not valid JSON: ${(e as Error).message}`);
      }
    },
  };
}

function appAnswer(response: AppResponse, status: number, txid: string): AppAnswer {
  const headers: Record<string, string> = { ...(response.headers ?? {}), [TX_HEADER]: txid };
  const body = response.body;
  if (body === undefined) return { status, headers, body: new Uint8Array(0) };
  if (typeof body === "string") {
    headers["content-type"] ??= "text/plain";
    return { status, headers, body: Buffer.from(body) };
  }
  if (body instanceof Uint8Array) {
    headers["content-type"] ??= "application/octet-stream";
    return { status, headers, body };
  }
  headers["content-type"] = "application/json";
  // Buffer.from(string) takes a small string's bytes from a shared pool (no allocation of its
  // own); a body JSON cannot express (a function) is sent empty, as a TextEncoder would send it.
  return { status, headers, body: Buffer.from(JSON.stringify(body) ?? "") };
}

export type Routed =
  | { kind: "answer"; answer: AppAnswer }
  | { kind: "run"; endpoint: Endpoint; params: Record<string, string>; path: string };

/** Every /app answer names a transaction; refusals before execution name the current state. */
function refusal(node: RpcNode, status: number, code: string, message: string): Routed {
  return { kind: "answer", answer: errorAnswer(status, code, message, node.currentTxId()) };
}

/** Finds the endpoint and checks the caller; refusals come back as answers. */
export function routeApp(node: RpcNode, executors: ExecutorRegistry, call: AppCall): Routed {
  const query = call.url.indexOf("?");
  const path = call.url.slice("/app".length, query < 0 ? undefined : query);
  if (!METHODS.has(call.method))
    return refusal(node, 405, "MethodNotAllowed", `${call.method} is not supported`);
  const match = executors.match(call.method as HttpMethod, path, node.store);
  if (!match) return refusal(node, 404, "ResourceNotFound", `no endpoint ${call.method} /app${path}`);
  if ("methodNotAllowed" in match)
    return refusal(node, 405, "MethodNotAllowed", `/app${path} does not accept ${call.method}`);
  const allowed = match.endpoint.query;
  const unknown = allowed ? unknownQueryParameter(call.url, allowed) : undefined;
  if (unknown !== undefined) {
    const takes = allowed!.length > 0 ? `it takes ${allowed!.join(", ")}` : "it takes none";
    return refusal(
      node,
      400,
      "UnknownQueryParameter",
      `/app${path} has no query parameter ${JSON.stringify(unknown)} (${takes})`,
    );
  }
  const wait = call.headers[WAIT_HEADER];
  if (wait !== undefined && wait !== "commit") {
    return refusal(node, 400, "InvalidHeaderValue", "x-coco-wait must be 'commit' when present");
  }
  const read = call.headers[READ_HEADER];
  if (read !== undefined && read !== "linearizable") {
    return refusal(node, 400, "InvalidHeaderValue", "x-coco-read must be 'linearizable' when present");
  }
  return { kind: "run", endpoint: match.endpoint, params: match.params, path };
}

/** The endpoint's mode for this call: per request when the endpoint says (`modeOf`). */
export function endpointMode(endpoint: Endpoint, call: AppCall, path: string): EndpointMode {
  if (!endpoint.modeOf) return endpoint.mode;
  return endpoint.modeOf({ method: call.method as HttpMethod, path, headers: call.headers, body: call.body });
}

/** Whether a call that reached a backup must run on the primary (the endpoint's forwarding rule). */
export function mustRunOnPrimary(
  endpoint: Endpoint,
  call: AppCall,
  path: string,
  sessionForwarded: boolean,
): boolean {
  if (endpoint.forwarding === "always") return true;
  if (endpoint.forwarding === "never") return false;
  return (
    endpointMode(endpoint, call, path) === "readwrite" ||
    call.headers[READ_HEADER] === "linearizable" ||
    sessionForwarded
  );
}

/** Runs an app handler on this node, committing its transaction, re-running it on a conflict. */
export async function executeApp(
  node: RpcNode,
  routed: Extract<Routed, { kind: "run" }>,
  call: AppCall,
  log: Logger,
): Promise<AppAnswer> {
  const listeners: Array<(txid: string, status: number) => void> = [];
  const answer = await executeOnce(node, routed, call, log, listeners);
  const txid = answer.headers[TX_HEADER];
  for (const listener of listeners) {
    try {
      listener(txid ?? "", answer.status);
    } catch (e) {
      log.error({ err: e }, "an app's answer listener failed");
    }
  }
  return answer;
}

async function executeOnce(
  node: RpcNode,
  routed: Extract<Routed, { kind: "run" }>,
  call: AppCall,
  log: Logger,
  listeners: Array<(txid: string, status: number) => void>,
): Promise<AppAnswer> {
  const { endpoint, params, path } = routed;
  // Certificate-only policies (the usual case) read no request: none is built for them.
  const auth = authenticate(
    endpoint.auth,
    call.peer,
    onlyCertificates(endpoint.auth) ? undefined : authRequest(node, call),
  );
  if (!auth.ok) return errorAnswer(auth.status, auth.code, auth.message, node.currentTxId());
  const mode = endpointMode(endpoint, call, path);
  if (mode === "readwrite" && !node.isPrimary) {
    return errorAnswer(
      503,
      "NotPrimary",
      "this node is not the primary; retry on the primary",
      node.currentTxId(),
    );
  }
  const linearizable = call.headers[READ_HEADER] === "linearizable";
  // A linearizable read also answers only once the state it read is committed: the primary's
  // store may hold writes a new primary would roll back, and a read must never see those.
  const waitForIt = call.headers[WAIT_HEADER] === "commit" || linearizable;
  if (linearizable) {
    try {
      await node.linearizableReadPoint();
    } catch (e) {
      if (e instanceof NotPrimaryError) {
        return errorAnswer(
          503,
          "NotPrimary",
          "linearizable reads are served by the primary; retry",
          node.currentTxId(),
        );
      }
      throw e;
    }
  }
  const request = makeRequest(call, path, params);
  const outbound = new OutboundSession(mode === "readwrite", () => (node.now ? node.now() : Date.now()));
  const release = mode === "readwrite" && endpoint.exclusive ? await exclusiveTurn(endpoint) : noRelease;
  try {
    const context = { listeners, outbound, release };
    return await runAttempts(node, endpoint, request, auth.caller, mode, waitForIt, log, context);
  } finally {
    release();
  }
}

/** Per endpoint, the promise the next exclusive request waits for. */
const exclusiveTails = new WeakMap<Endpoint, Promise<void>>();

/** Waits for the endpoint's earlier exclusive requests; returns the (idempotent) release. */
async function exclusiveTurn(endpoint: Endpoint): Promise<() => void> {
  const before = exclusiveTails.get(endpoint) ?? Promise.resolve();
  let open!: () => void;
  const mine = new Promise<void>((resolve) => {
    open = resolve;
  });
  exclusiveTails.set(
    endpoint,
    before.then(() => mine),
  );
  await before;
  return open;
}

/** What every attempt of one request shares. */
interface AttemptContext {
  listeners: Array<(txid: string, status: number) => void>;
  outbound: OutboundSession;
  /** Ends the request's exclusive turn (a no-op when it has none). */
  release: () => void;
}

async function runAttempts(
  node: RpcNode,
  endpoint: Endpoint,
  request: AppRequest,
  caller: Caller,
  mode: EndpointMode,
  waitForIt: boolean,
  log: Logger,
  { listeners, outbound, release }: AttemptContext,
): Promise<AppAnswer> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const tx = node.store.begin();
    const result = await runHandler(endpoint, request, caller, tx, log, listeners, outbound);
    if ("rerun" in result) {
      tx.abandon();
      continue;
    }
    if ("error" in result) {
      tx.abandon();
      return errorAnswer(
        result.error.status,
        result.error.code,
        result.error.message,
        node.txIdOf(tx.startVersion),
      );
    }
    const status = result.response.status ?? 200;
    const applies =
      result.response.applyWrites ??
      (endpoint.applyWrites ? endpoint.applyWrites(status) : status >= 200 && status < 300);
    if (tx.isReadOnly || !applies) {
      tx.abandon();
      return answerRead(node, tx.startVersion, waitForIt, result.response, status);
    }
    if (mode !== "readwrite") {
      tx.abandon();
      log.error({ endpoint: endpoint.path }, "a read-only endpoint wrote to the store; writes dropped");
      return errorAnswer(500, "InternalError", "read-only endpoint attempted to write", node.currentTxId());
    }
    const writes = tx.writeSet();
    const forbidden =
      writes.find((m) => reservedMap(m.name))?.name ??
      (outbound.wroteOnlyItsOwn(writes) ? undefined : OUTBOUND_RESPONSES);
    if (forbidden) {
      tx.abandon();
      return errorAnswer(
        403,
        "AuthorizationFailed",
        `apps may not write the framework map ${forbidden}`,
        node.currentTxId(),
      );
    }
    let outcome: CommitOutcome;
    try {
      outcome = node.commit(tx, result.claimsDigest);
    } catch (e) {
      if (e instanceof NotPrimaryError) {
        return errorAnswer(
          503,
          "NotPrimary",
          "this node stopped being the primary; retry",
          node.currentTxId(),
        );
      }
      throw e;
    }
    if (!outcome.ok) continue;
    // Committed to the store: the next exclusive request may start while this one waits.
    release();
    if (outcome.seqno === null) return answerRead(node, tx.startVersion, waitForIt, result.response, status);
    const txid = `${outcome.view}.${outcome.seqno}`;
    if (waitForIt || endpoint.waitForCommit) {
      const failed = await waitForCommit(node, outcome.seqno, txid);
      if (failed) return failed;
    }
    return appAnswer(result.response, status, txid);
  }
  return errorAnswer(
    409,
    "TransactionConflict",
    `gave up after ${MAX_ATTEMPTS} conflicting attempts; retry`,
    node.currentTxId(),
  );
}

/**
 * Answers a request that wrote nothing with the id of the state it read; with respond-on-commit,
 * only once that state is committed, so the client never acts on a read that could roll back.
 */
async function answerRead(
  node: RpcNode,
  readVersion: number,
  waitForIt: boolean,
  response: AppResponse,
  status: number,
): Promise<AppAnswer> {
  const txid = node.txIdOf(readVersion);
  if (waitForIt) {
    const failed = await waitForCommit(node, readVersion, txid);
    if (failed) return failed;
  }
  return appAnswer(response, status, txid);
}

type HandlerResult =
  | { response: AppResponse; claimsDigest: Uint8Array }
  | { rerun: true }
  | { error: { status: number; code: string; message: string } };

async function runHandler(
  endpoint: Endpoint,
  request: AppRequest,
  caller: Caller,
  tx: Tx,
  log: Logger,
  listeners: Array<(txid: string, status: number) => void>,
  outbound: OutboundSession,
): Promise<HandlerResult> {
  let claimsDigest = ZERO_DIGEST;
  try {
    const response = await endpoint.handler({
      request,
      caller,
      tx,
      setClaimsDigest(digest) {
        if (!(digest instanceof Uint8Array) || digest.length !== 32) {
          throw new HttpError(500, "InternalError", "claims digest must be 32 bytes");
        }
        claimsDigest = new Uint8Array(digest);
      },
      onAnswer(callback) {
        listeners.push(callback);
      },
      fetch(req) {
        return outbound.fetch(tx, req);
      },
      fetchedBefore(req) {
        return outbound.before(tx, req);
      },
    });
    const status = response.status ?? 200;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      return { error: { status: 500, code: "InternalError", message: `handler returned status ${status}` } };
    }
    return { response, claimsDigest };
  } catch (e) {
    if (e instanceof RerunWithFetched) return { rerun: true };
    if (e instanceof HttpError) return { error: { status: e.status, code: e.code, message: e.message } };
    if (e instanceof KvError) return { error: { status: 400, code: "InvalidInput", message: e.message } };
    log.error({ err: e, endpoint: endpoint.path }, "app handler failed");
    return { error: { status: 500, code: "InternalError", message: "the app handler failed" } };
  }
}

/** What the policies beyond client certificates read from a call. */
export function authRequest(node: RpcNode, call: AppCall): AuthRequest {
  const nowMs = node.now ? node.now() : Date.now();
  return { headers: call.headers, body: call.body, store: node.store, nowSeconds: Math.floor(nowMs / 1000) };
}
