import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { TX_HEADER } from "./answers.ts";
import type { AppEntry, EdgeAnswer } from "./forwarding.ts";
import { repeatedQueryParameter } from "./http-checks.ts";
import type { RpcNode } from "./port.ts";

/**
 * `/app` requests answered on node:http directly, without fastify's per-request layers (its
 * request and reply objects, hooks, content-type parsing and reply serialisation: BENCHMARKS.md
 * "Session 7"). Only the common case is taken here, and its answer is written exactly as fastify
 * would write it (the same headers in the same order, the same body); every other request goes to
 * fastify, whose answers stay the reference: a node that is stopping (503), a body over the limit
 * or of unknown length (413, chunked), a content type fastify would refuse or parse otherwise
 * (415), a URL fastify decodes or refuses (`%`, repeated query parameters), HEAD and other
 * methods, and the framework's own `/app/...` routes (`/app/tx`, `/app/receipt`, ...).
 * test/rpc/app-direct.test.ts holds both paths to the same bytes.
 */

const METHODS = new Set(["GET", "PUT", "POST", "DELETE", "PATCH"]);
/** Methods fastify reads no body for. */
const BODYLESS = new Set(["GET"]);
/** Request content types taken here: fastify reads each of them as the same raw bytes. */
const CONTENT_TYPES = new Set([
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=utf-8",
  "application/json; charset=UTF-8",
  "application/json;charset=UTF-8",
]);

export interface DirectAppPath {
  /** Whether the node is stopping (fastify answers its requests 503). */
  closing(): boolean;
  /** Routes fastify serves under `/app/` itself, as `METHOD path`. */
  readonly frameworkRoutes: Set<string>;
}

/**
 * Takes the request if it is the common case (see above) and answers it; false leaves it, unread,
 * to fastify.
 */
export function takeAppRequest(
  req: IncomingMessage,
  res: ServerResponse,
  edge: DirectAppPath,
  entry: AppEntry,
  node: RpcNode,
  log: Logger,
): boolean {
  const url = req.url;
  const method = req.method;
  if (url === undefined || method === undefined || !url.startsWith("/app/") || !METHODS.has(method))
    return false;
  if (edge.closing()) return false;
  const query = url.indexOf("?");
  const path = query < 0 ? url : url.slice(0, query);
  if (path.includes("%") || edge.frameworkRoutes.has(`${method} ${path}`)) return false;
  if (query >= 0 && repeatedQueryParameter(url) !== undefined) return false;
  const headers = req.headers;
  if (headers["accept-version"] !== undefined) return false;
  if (BODYLESS.has(method)) {
    answer(req, res, entry, node, log, EMPTY);
    return true;
  }
  if (headers["transfer-encoding"] !== undefined) return false;
  const length = headers["content-length"];
  const contentType = headers["content-type"];
  if (contentType === undefined) {
    // Fastify hands the handler no body only when none is announced.
    if (length !== undefined && length !== "0") return false;
    answer(req, res, entry, node, log, EMPTY);
    return true;
  }
  if (!CONTENT_TYPES.has(contentType)) return false;
  if (length !== undefined && !(Number(length) <= node.settings.maxBodyBytes)) return false;
  readBody(req, res, entry, node, log);
  return true;
}

const EMPTY = new Uint8Array(0);

/**
 * Reads the body (its length announced and within the limit, which Node's parser holds the client
 * to) into one buffer of its own, as fastify's raw-body reader does.
 */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  entry: AppEntry,
  node: RpcNode,
  log: Logger,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  req.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
  });
  req.once("end", () => answer(req, res, entry, node, log, Buffer.concat(chunks, received)));
  req.once("error", (error: Error) => {
    // As fastify: a request that fails while its body arrives is answered 400 (if it still can be).
    writeDirect(res, req.method!, errorEdgeAnswer(node, 400, "InvalidInput", error.message));
  });
}

function answer(
  req: IncomingMessage,
  res: ServerResponse,
  entry: AppEntry,
  node: RpcNode,
  log: Logger,
  body: Uint8Array,
): void {
  entry
    .answer({
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body,
      socket: req.socket as TLSSocket,
    })
    .then(
      (a) => writeDirect(res, req.method!, a),
      (error: unknown) => {
        // fastify's error handler (src/rpc/server.ts): logged, and answered without detail.
        log.error({ err: error }, "request failed");
        writeDirect(res, req.method!, errorEdgeAnswer(node, 500, "InternalError", "internal error"));
      },
    );
}

/**
 * The error answer fastify's error handler gives: the TxID first, then its JSON content type
 * (which fastify completes with a charset when it serialises an object).
 */
function errorEdgeAnswer(node: RpcNode, status: number, code: string, message: string): EdgeAnswer {
  return {
    status,
    headers: { [TX_HEADER]: node.currentTxId(), "content-type": "application/json; charset=utf-8" },
    body: Buffer.from(JSON.stringify({ error: { code, message } })),
  };
}

/** Writes an answer with the headers fastify's reply would send for it, in its order. */
export function writeDirect(res: ServerResponse, method: string, answer: EdgeAnswer): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | string[]> = {};
  for (const name in answer.headers) setHeader(headers, name, answer.headers[name]!);
  const status = answer.status;
  const body = answer.body;
  if (body === undefined) {
    if (status >= 200 && status !== 204 && status !== 304 && method !== "HEAD")
      headers["content-length"] = "0";
    res.writeHead(status, headers);
    res.end();
    return;
  }
  if (!validContentType(headers["content-type"])) headers["content-type"] = "application/octet-stream";
  if ((status >= 100 && status < 200) || status === 204) {
    delete headers["content-type"];
    delete headers["content-length"];
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const announced = headers["content-length"];
  if (!announced || (method !== "HEAD" && Number(announced) !== payload.length)) {
    headers["content-length"] = `${payload.length}`;
  }
  res.writeHead(status, headers);
  // end() corks the socket: status line, headers and body leave in one write.
  res.end(payload);
}

/** As fastify's `reply.header`: names lowercased, a repeated set-cookie kept as a list. */
function setHeader(headers: Record<string, string | string[]>, name: string, value: string): void {
  const key = name.toLowerCase();
  const existing = headers[key];
  if (existing !== undefined && existing !== "" && key === "set-cookie") {
    headers[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  } else {
    headers[key] = value;
  }
}

const TOKEN = /^[\w!#$%&'*+.^`|~-]+$/;
const SUBTYPE = /^[\w!#$%&'*+.^`|~-]+\s*$/;

/**
 * Whether fastify reads this as a content type (its rule: `type/subtype`, each a token, with any
 * parameters after `;`); fastify replaces one it cannot read with application/octet-stream.
 */
function validContentType(value: string | string[] | undefined): boolean {
  if (typeof value !== "string" || value === "" || value === "undefined") return false;
  const semicolon = value.indexOf(";");
  const media = (semicolon < 0 ? value : value.slice(0, semicolon)).toLowerCase();
  const slash = media.indexOf("/");
  if (slash < 0) return false;
  return TOKEN.test(media.slice(0, slash).trimStart()) && SUBTYPE.test(media.slice(slash + 1).trimEnd());
}
