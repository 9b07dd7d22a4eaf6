import type { TLSSocket } from "node:tls";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { ExecutorRegistry } from "../apps/index.ts";
import { type AppAnswer, errorAnswer, READ_HEADER, TX_HEADER, WAIT_HEADER } from "./answers.ts";
import { type AppCall, authRequest, executeApp, mustRunOnPrimary, routeApp } from "./app-dispatch.ts";
import { authenticate, identifyPeer, peerFromId } from "./auth.ts";
import type { RpcNode } from "./port.ts";

/** A client call a backup hands to the primary: the caller is named by its certificate id. */
interface ForwardedCall {
  kind: "forwarded_call";
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  callerId: string | null;
}

/** Connections that have been forwarded once stay forwarded, so a client reads its own writes. */
const forwardedSessions = new WeakSet<object>();

/** Only these request headers travel with a forwarded call. */
const FORWARDED_HEADERS = ["content-type", "accept", "authorization", WAIT_HEADER, READ_HEADER];

function writeAnswer(reply: FastifyReply, answer: AppAnswer): FastifyReply {
  for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
  return reply.status(answer.status).send(Buffer.from(answer.body));
}

/** The HTTPS entry for `/app/*`: runs here, or on the primary for writes that reach a backup. */
export function appHandler(node: RpcNode, executors: ExecutorRegistry, log: Logger) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const socket = req.raw.socket as TLSSocket;
    const call: AppCall = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body instanceof Uint8Array ? req.body : new Uint8Array(0),
      peer: identifyPeer(socket, node.store),
    };
    const routed = routeApp(node, executors, call);
    if (routed.kind === "answer") return writeAnswer(reply, routed.answer);
    const needsPrimary = mustRunOnPrimary(routed.endpoint, call, routed.path, forwardedSessions.has(socket));
    const primary = node.primaryId;
    if (!needsPrimary || node.isPrimary || primary === null || primary === node.nodeId) {
      return writeAnswer(reply, await executeApp(node, routed, call, log));
    }
    // Refuse unknown callers here rather than spend the primary's time on them.
    const auth = authenticate(routed.endpoint.auth, call.peer, authRequest(node, call));
    if (!auth.ok) {
      return writeAnswer(reply, errorAnswer(auth.status, auth.code, auth.message, node.currentTxId()));
    }
    if (node.settings.forwarding === "redirect") {
      const address = node.rpcAddressOf(primary);
      if (address) {
        return reply
          .status(307)
          .header("location", `https://${address}${req.url}`)
          .header(TX_HEADER, node.currentTxId())
          .send();
      }
    }
    forwardedSessions.add(socket);
    return writeAnswer(reply, await forward(node, primary, call));
  };
}

async function forward(node: RpcNode, primary: string, call: AppCall): Promise<AppAnswer> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = call.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  const message: ForwardedCall = {
    kind: "forwarded_call",
    method: call.method,
    url: call.url,
    headers,
    body: call.body,
    callerId: call.peer.id,
  };
  const timeoutMs = node.settings.forwardTimeoutMs;
  const current = node.currentTxId();
  try {
    const answer = parseAnswer(await node.requestNode(primary, message, timeoutMs));
    return answer ?? errorAnswer(502, "BadForwardedAnswer", "the primary's answer was malformed", current);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "timeout") {
      return errorAnswer(
        504,
        "ForwardingTimeout",
        `the primary did not answer within ${timeoutMs} ms`,
        current,
      );
    }
    return errorAnswer(
      503,
      "ForwardingFailed",
      `could not reach the primary: ${(e as Error).message}`,
      current,
    );
  }
}

function parseAnswer(raw: unknown): AppAnswer | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const a = raw as Partial<AppAnswer>;
  if (
    !Number.isInteger(a.status) ||
    !(a.body instanceof Uint8Array) ||
    typeof a.headers !== "object" ||
    !a.headers
  ) {
    return undefined;
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(a.headers)) if (typeof v === "string") headers[k] = v;
  return { status: a.status!, headers, body: a.body };
}

function parseForwardedCall(raw: unknown): ForwardedCall | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const m = raw as Partial<ForwardedCall>;
  if (m.kind !== "forwarded_call" || typeof m.method !== "string" || typeof m.url !== "string")
    return undefined;
  if (!m.url.startsWith("/app/") || !(m.body instanceof Uint8Array)) return undefined;
  if (!(m.callerId === null || (typeof m.callerId === "string" && /^[0-9a-f]{64}$/.test(m.callerId))))
    return undefined;
  if (typeof m.headers !== "object" || m.headers === null) return undefined;
  return m as ForwardedCall;
}

/**
 * The primary's side: runs calls forwarded by backups. The backup authenticated the client's
 * TLS certificate; the primary trusts that (the backup is a node of the service, on a mutually
 * authenticated channel) but decides roles from its own store.
 */
export function serveForwardedCalls(node: RpcNode, executors: ExecutorRegistry, log: Logger): void {
  node.onNodeRequest(async (from, raw) => {
    const message = parseForwardedCall(raw);
    if (!message) {
      log.warn({ from }, "refused a malformed forwarded call");
      return errorAnswer(400, "InvalidInput", "malformed forwarded call");
    }
    const call: AppCall = {
      method: message.method,
      url: message.url,
      headers: message.headers,
      body: message.body,
      peer: peerFromId(message.callerId, node.store),
    };
    const routed = routeApp(node, executors, call);
    if (routed.kind === "answer") return routed.answer;
    return executeApp(node, routed, call, log);
  });
}
