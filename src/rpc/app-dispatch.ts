import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import {
  type App,
  type AppRequest,
  type AppResponse,
  type Caller,
  type Endpoint,
  HttpError,
  type HttpMethod,
} from "../apps/index.ts";
import { KvError, type Tx } from "../kv/index.ts";
import { NotPrimaryError, ZERO_DIGEST } from "../node/ledger-state.ts";
import type { CocoNode } from "../node/node.ts";
import { authenticate, identifyPeer } from "./auth.ts";
import { TX_HEADER, waitForCommitOrReply, wantsCommitWait } from "./commit-wait.ts";
import { sendError } from "./errors.ts";

const MAX_ATTEMPTS = 10;
const METHODS = new Set(["GET", "PUT", "POST", "DELETE", "PATCH"]);
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Framework maps are written by the node and governance only, never by apps. */
function reservedMap(name: string): boolean {
  return name.startsWith("public:ccf.") || name.startsWith("ccf.");
}

function makeRequest(req: FastifyRequest, path: string, params: Record<string, string>): AppRequest {
  const body = req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
  const queryIndex = req.url.indexOf("?");
  const text = (): string => {
    try {
      return decoder.decode(body);
    } catch {
      throw new HttpError(400, "InvalidInput", "request body is not valid UTF-8");
    }
  };
  return {
    method: req.method as HttpMethod,
    path,
    params,
    query: new URLSearchParams(queryIndex < 0 ? "" : req.url.slice(queryIndex + 1)),
    headers: req.headers,
    body,
    text,
    json<T>(): T {
      try {
        return JSON.parse(text()) as T;
      } catch (e) {
        if (e instanceof HttpError) throw e;
        throw new HttpError(400, "InvalidInput", `request body is not valid JSON: ${(e as Error).message}`);
      }
    },
  };
}

function sendAppResponse(reply: FastifyReply, response: AppResponse, status: number): FastifyReply {
  for (const [name, value] of Object.entries(response.headers ?? {})) reply.header(name, value);
  reply.status(status);
  const body = response.body;
  if (body === undefined) return reply.send();
  const contentType = response.headers?.["content-type"];
  if (typeof body === "string") return reply.type(contentType ?? "text/plain").send(body);
  if (body instanceof Uint8Array)
    return reply.type(contentType ?? "application/octet-stream").send(Buffer.from(body));
  return reply.type("application/json").send(JSON.stringify(body));
}

/** Runs an app handler, committing its transaction, re-running it on a conflict. */
export async function dispatchApp(
  node: CocoNode,
  app: App,
  log: Logger,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const path = req.url.slice("/app".length).split("?")[0]!;
  // Every /app answer names a transaction; errors before execution name the current state.
  reply.header(TX_HEADER, node.state.txIdOf(node.state.store.version));
  if (!METHODS.has(req.method))
    return sendError(reply, 405, "MethodNotAllowed", `${req.method} is not supported`);
  const match = app.router.match(req.method as HttpMethod, path);
  if (!match) return sendError(reply, 404, "ResourceNotFound", `no endpoint ${req.method} /app${path}`);
  if ("methodNotAllowed" in match) {
    return sendError(reply, 405, "MethodNotAllowed", `/app${path} does not accept ${req.method}`);
  }
  const waitHeader = wantsCommitWait(req);
  if (waitHeader === "invalid") {
    return sendError(reply, 400, "InvalidHeaderValue", "x-coco-wait must be 'commit' when present");
  }
  const { endpoint, params } = match;
  const auth = authenticate(
    endpoint.auth,
    identifyPeer(req.raw.socket as import("node:tls").TLSSocket, node.state.store),
  );
  if (!auth.ok) return sendError(reply, auth.status, auth.code, auth.message);
  if (endpoint.mode === "readwrite" && !node.isPrimary) return notPrimary(reply);
  const request = makeRequest(req, path, params);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const tx = node.state.store.begin();
    const result = await runHandler(endpoint, request, auth.caller, tx, log);
    if ("error" in result) {
      tx.abandon();
      reply.header(TX_HEADER, node.state.txIdOf(tx.startVersion));
      return sendError(reply, result.error.status, result.error.code, result.error.message);
    }
    const status = result.response.status ?? 200;
    const applies = endpoint.applyWrites ? endpoint.applyWrites(status) : status >= 200 && status < 300;
    if (tx.isReadOnly || !applies) {
      tx.abandon();
      return answerRead(node, reply, tx.startVersion, waitHeader === "commit", result.response, status);
    }
    if (endpoint.mode === "readonly") {
      tx.abandon();
      log.error({ endpoint: endpoint.path }, "a read-only endpoint wrote to the store; writes dropped");
      return sendError(reply, 500, "InternalError", "read-only endpoint attempted to write");
    }
    const forbidden = tx.writeSet().find((m) => reservedMap(m.name));
    if (forbidden) {
      tx.abandon();
      return sendError(
        reply,
        403,
        "AuthorizationFailed",
        `apps may not write the framework map ${forbidden.name}`,
      );
    }
    let outcome: ReturnType<CocoNode["commit"]>;
    try {
      outcome = node.commit(tx, result.claimsDigest);
    } catch (e) {
      if (e instanceof NotPrimaryError) return notPrimary(reply);
      throw e;
    }
    if (!outcome.ok) continue;
    if (outcome.seqno === null) {
      return answerRead(node, reply, tx.startVersion, waitHeader === "commit", result.response, status);
    }
    const txid = `${outcome.view}.${outcome.seqno}`;
    reply.header(TX_HEADER, txid);
    if (waitHeader === "commit" || endpoint.waitForCommit) {
      const failed = await waitForCommitOrReply(node, outcome.seqno, txid, reply);
      if (failed) return failed;
    }
    return sendAppResponse(reply, result.response, status);
  }
  return sendError(
    reply,
    409,
    "TransactionConflict",
    `gave up after ${MAX_ATTEMPTS} conflicting attempts; retry`,
  );
}

/**
 * Answers a request that wrote nothing with the id of the state it read; with respond-on-commit,
 * only once that state is committed, so the client never acts on a read that could roll back.
 */
async function answerRead(
  node: CocoNode,
  reply: FastifyReply,
  readVersion: number,
  waitForCommit: boolean,
  response: AppResponse,
  status: number,
): Promise<FastifyReply> {
  const txid = node.state.txIdOf(readVersion);
  reply.header(TX_HEADER, txid);
  if (waitForCommit) {
    const failed = await waitForCommitOrReply(node, readVersion, txid, reply);
    if (failed) return failed;
  }
  return sendAppResponse(reply, response, status);
}

/** Writes run on the primary only; forwarding to it comes with replication. */
function notPrimary(reply: FastifyReply): FastifyReply {
  return sendError(reply, 503, "NotPrimary", "this node is not the primary; retry on the primary");
}

type HandlerResult =
  | { response: AppResponse; claimsDigest: Uint8Array }
  | { error: { status: number; code: string; message: string } };

async function runHandler(
  endpoint: Endpoint,
  request: AppRequest,
  caller: Caller,
  tx: Tx,
  log: Logger,
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
    });
    const status = response.status ?? 200;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      return { error: { status: 500, code: "InternalError", message: `handler returned status ${status}` } };
    }
    return { response, claimsDigest };
  } catch (e) {
    if (e instanceof HttpError) return { error: { status: e.status, code: e.code, message: e.message } };
    if (e instanceof KvError) return { error: { status: 400, code: "InvalidInput", message: e.message } };
    log.error({ err: e, endpoint: endpoint.path }, "app handler failed");
    return { error: { status: 500, code: "InternalError", message: "the app handler failed" } };
  }
}
