import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { ExecutorRegistry } from "../apps/index.ts";
import { sha256, toHex } from "../crypto/index.ts";
import type { Store } from "../kv/index.ts";
import { Tables } from "../ledger/index.ts";
import { type AppAnswer, errorAnswer, READ_HEADER, TX_HEADER, WAIT_HEADER } from "./answers.ts";
import {
  type AppCall,
  authRequest,
  endpointMode,
  executeApp,
  mustRunOnPrimary,
  type Routed,
  routeApp,
} from "./app-dispatch.ts";
import {
  authenticate,
  certificateDateProblem,
  clientCertificateDer,
  identifyPeer,
  type Peer,
  peerFromId,
} from "./auth.ts";
import { forwardToPrimary } from "./failover.ts";
import type { RpcNode } from "./port.ts";

/**
 * A client call a backup hands to the primary. The caller travels as the DER certificate it
 * presented in its TLS handshake with the backup (or none); the primary derives the caller's id
 * from it, so a backup cannot name a caller by id alone (see docs/security.md).
 */
interface ForwardedCall {
  kind: "forwarded_call";
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  callerCert: Uint8Array | null;
}

/** The largest client certificate a forwarded call may carry. */
const MAX_CALLER_CERT_BYTES = 16 * 1024;

/** Connections that have been forwarded once stay forwarded, so a client reads its own writes. */
const forwardedSessions = new WeakSet<object>();

/** Only these request headers travel with a forwarded call. */
const FORWARDED_HEADERS = ["content-type", "accept", "authorization", WAIT_HEADER, READ_HEADER];

/**
 * What the HTTP edge writes for an `/app` request: an app answer, or a redirect to the primary
 * (`body` undefined: written with no body and no content type).
 */
export type EdgeAnswer = AppAnswer | { status: 307; headers: Record<string, string>; body: undefined };

/** An `/app` request as it reached this node's HTTPS endpoint (through fastify or directly). */
export interface EdgeRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  socket: TLSSocket;
}

/** Answers `/app/*` requests: runs them here, or on the primary for writes that reach a backup. */
export class AppEntry {
  constructor(
    private readonly node: RpcNode,
    private readonly executors: ExecutorRegistry,
    private readonly log: Logger,
  ) {}

  async answer(req: EdgeRequest): Promise<EdgeAnswer> {
    const { node, executors, log } = this;
    const socket = req.socket;
    const call: AppCall = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body,
      peer: identifyPeer(socket, node.store),
    };
    const routed = routeApp(node, executors, call);
    if (routed.kind === "answer") return routed.answer;
    // A retired node's state no longer advances, and the primary no longer takes its calls. (The
    // primary is never retired: only its status would say so, and building that costs a request.)
    if (!node.isPrimary && node.status().retired) return retiredAnswer(node);
    const needsPrimary = mustRunOnPrimary(routed.endpoint, call, routed.path, forwardedSessions.has(socket));
    if (!needsPrimary || node.isPrimary) return executeApp(node, routed, call, log);
    // Refuse unknown callers here rather than spend the primary's time on them.
    const auth = authenticate(routed.endpoint.auth, call.peer, authRequest(node, call));
    if (!auth.ok) return errorAnswer(auth.status, auth.code, auth.message, node.currentTxId());
    const primary = node.primaryId;
    if (node.settings.forwarding === "redirect" && primary !== null) {
      const address = node.rpcAddressOf(primary);
      if (address) {
        return {
          status: 307,
          headers: { location: `https://${address}${req.url}`, [TX_HEADER]: node.currentTxId() },
          body: undefined,
        };
      }
    }
    forwardedSessions.add(socket);
    const answer = await forward(node, routed, call, clientCertificateDer(socket), log);
    // The primary let this node go while the call travelled: say so, not "not trusted".
    if (answer.status === 403 && errorCodeOf(answer) === "ForwarderNotTrusted" && retiredInStore(node)) {
      return retiredAnswer(node);
    }
    return answer;
  }
}

function writeAnswer(reply: FastifyReply, answer: EdgeAnswer): FastifyReply {
  for (const name in answer.headers) reply.header(name, answer.headers[name]);
  reply.status(answer.status);
  const body = answer.body;
  if (body === undefined) return reply.send();
  return reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** The fastify route for `/app/*`. */
export function appHandler(entry: AppEntry) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const answer = await entry.answer({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body instanceof Uint8Array ? req.body : new Uint8Array(0),
      socket: req.raw.socket as TLSSocket,
    });
    return writeAnswer(reply, answer);
  };
}

/** True when this node's own record in its store says Retired (its removal may not be committed yet). */
function retiredInStore(node: RpcNode): boolean {
  return node.nodes().some(([id, info]) => id === node.nodeId && info.status === "Retired");
}

/** The answer of a retired node to client calls, naming nodes that still serve. */
function retiredAnswer(node: RpcNode): AppAnswer {
  const others = node
    .nodes()
    .filter(([id, info]) => id !== node.nodeId && info.status === "Trusted")
    .map(([, info]) => info.rpc_address);
  const where = others.length > 0 ? `; use one of ${others.join(", ")}` : "";
  return errorAnswer(
    503,
    "NodeRetired",
    `this node has been retired from the service and no longer serves it${where}`,
    node.currentTxId(),
  );
}

function errorCodeOf(answer: AppAnswer): string | undefined {
  try {
    return (JSON.parse(new TextDecoder().decode(answer.body)) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** Hands a call to the primary, following changes of primary (see failover.ts). */
function forward(
  node: RpcNode,
  routed: Extract<Routed, { kind: "run" }>,
  call: AppCall,
  callerCert: Uint8Array | null,
  log: Logger,
): Promise<AppAnswer> {
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
    callerCert,
  };
  return forwardToPrimary(node, {
    message,
    repeatable: endpointMode(routed.endpoint, call, routed.path) !== "readwrite",
    runHere: () => executeApp(node, routed, call, log),
  });
}

function parseForwardedCall(raw: unknown): ForwardedCall | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const m = raw as Partial<ForwardedCall>;
  if (m.kind !== "forwarded_call" || typeof m.method !== "string" || typeof m.url !== "string")
    return undefined;
  if (!m.url.startsWith("/app/") || !(m.body instanceof Uint8Array)) return undefined;
  if (
    !(
      m.callerCert === null ||
      (m.callerCert instanceof Uint8Array &&
        m.callerCert.length > 0 &&
        m.callerCert.length <= MAX_CALLER_CERT_BYTES)
    )
  )
    return undefined;
  if (typeof m.headers !== "object" || m.headers === null) return undefined;
  return m as ForwardedCall;
}

/** A certificate forwarded before: its validity dates (a function of its bytes alone). */
interface ForwardedCert {
  notBefore: number;
  notAfter: number;
}
/** Certificates forwarded before, by id (the SHA-256 of their DER bytes). */
const forwardedCerts = new Map<string, ForwardedCert>();
/** Certificates (and callers per store) kept: a node's clients are few; when full, a map starts over. */
const MAX_FORWARDED_CERTS = 4096;
/**
 * Per primary store, the caller each certificate id last resolved to and the user and member
 * maps it was read from (while they are unchanged, the lookup gives the same caller). Weak: a
 * stopped node's store is not held.
 */
const resolvedCallers = new WeakMap<
  Store,
  Map<string, { users: object | null; members: object | null; peer: Peer }>
>();

/**
 * The caller a forwarded certificate names: its id is the SHA-256 of the DER bytes, looked up in
 * the primary's own store. Undefined when the bytes are not a certificate. Parsing a certificate
 * costs 100-250 us of CPU, more than the rest of a forwarded write on the primary, and clients
 * send the same certificate on every call: its dates are parsed once per id (the same id is the
 * same bytes), and checked against `now` on every call.
 */
function callerOf(der: Uint8Array | null, store: Store, now = Date.now()): Peer | undefined {
  if (der === null) return peerFromId(null, store);
  const id = toHex(sha256(der));
  let known = forwardedCerts.get(id);
  if (known === undefined) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      return undefined;
    }
    known = { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
    if (forwardedCerts.size >= MAX_FORWARDED_CERTS) forwardedCerts.clear();
    forwardedCerts.set(id, known);
  }
  // The primary checks the dates too: a backup forwards whatever certificate the client showed.
  const problem = certificateDateProblem(known, now);
  if (problem) return { id: null, user: null, member: null, invalidCertificate: `${id}: ${problem}` };
  const users = store.mapState(Tables.usersCerts);
  const members = store.mapState(Tables.membersCerts);
  let callers = resolvedCallers.get(store);
  if (callers === undefined) {
    callers = new Map();
    resolvedCallers.set(store, callers);
  }
  const last = callers.get(id);
  if (last && last.users === users && last.members === members) return last.peer;
  const peer = peerFromId(id, store);
  if (callers.size >= MAX_FORWARDED_CERTS) callers.clear();
  callers.set(id, { users, members, peer });
  return peer;
}

/**
 * The primary's side: runs calls forwarded by backups, and only from nodes this node's store
 * records as Trusted, or as Retired while still in an active configuration (a retiring node
 * serves its clients until its removal commits); the channel already refused any other node. The backup authenticated the client's TLS certificate
 * and sends it along; the primary derives the caller from it and decides roles from its own
 * store.
 */
export function serveForwardedCalls(node: RpcNode, executors: ExecutorRegistry, log: Logger): void {
  node.onNodeRequest(async (from, raw) => {
    if (!node.mayForward(from)) {
      log.warn({ from }, "refused a forwarded call from a node that is not trusted");
      return errorAnswer(403, "ForwarderNotTrusted", "forwarded calls are run only for trusted nodes");
    }
    const message = parseForwardedCall(raw);
    if (!message) {
      log.warn({ from }, "refused a malformed forwarded call");
      return errorAnswer(400, "InvalidInput", "malformed forwarded call");
    }
    const peer = callerOf(message.callerCert, node.store);
    if (!peer) {
      log.warn({ from }, "refused a forwarded call whose caller certificate is not a certificate");
      return errorAnswer(
        400,
        "InvalidInput",
        "malformed forwarded call: the caller certificate is unreadable",
      );
    }
    const call: AppCall = {
      method: message.method,
      url: message.url,
      headers: message.headers,
      body: message.body,
      peer,
    };
    const routed = routeApp(node, executors, call);
    if (routed.kind === "answer") return routed.answer;
    return executeApp(node, routed, call, log);
  });
}
