import type { Socket } from "node:net";
import type { Logger } from "pino";

/**
 * Checks every request meets before an endpoint sees it, and the answers the HTTP layer itself
 * gives, all in Coco's error shape (`{"error": {"code", "message"}}`).
 */

/** The query string of a URL (without the `?`), or "" when there is none. */
function queryOf(url: string): string {
  const at = url.indexOf("?");
  return at < 0 ? "" : url.slice(at + 1);
}

/**
 * The first query parameter given more than once, or undefined. A repeated parameter is
 * refused rather than resolved to one of its values, so no endpoint acts on a value the client
 * did not mean.
 */
export function repeatedQueryParameter(url: string): string | undefined {
  const query = queryOf(url);
  if (query === "" || !query.includes("&")) return undefined;
  const seen = new Set<string>();
  for (const name of new URLSearchParams(query).keys()) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/**
 * The first query parameter not in `allowed`, or undefined. Endpoints that page list theirs: a
 * misspelt paging parameter ignored would send a naive paging loop round forever.
 */
export function unknownQueryParameter(url: string, allowed: readonly string[]): string | undefined {
  const query = queryOf(url);
  if (query === "") return undefined;
  for (const name of new URLSearchParams(query).keys()) if (!allowed.includes(name)) return name;
  return undefined;
}

/** `application/json` and `application/<anything>+json`, with any parameters. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Why a body may not be read as JSON, or undefined if it may: a content type other than JSON is
 * refused (form-urlencoded included); no content type is read as JSON, as CCF does.
 */
export function jsonContentTypeProblem(contentType: string | string[] | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const value = Array.isArray(contentType) ? contentType.join(", ") : contentType;
  if (value.trim() === "" || JSON_TYPE.test(value.trim())) return undefined;
  return `this endpoint takes application/json, not ${JSON.stringify(value)}`;
}

/** The answer to a request Node's HTTP parser refused, or to a request that came too slowly. */
interface ClientErrorAnswer {
  status: number;
  code: string;
  message: string;
}

/**
 * The answer for `err` if it is the client's own fault in HTTP terms (the parser refused its
 * bytes, or its request came too slowly), or undefined for every other error on the connection.
 *
 * Node's HTTP server hands the `clientError` handler more than parser errors: any 'error' event
 * on the connection's socket (a reset, a broken pipe, a TLS record error) and, on an HTTPS
 * server, every failed TLS handshake, including the handshake timeout. Such a connection may
 * carry a well-formed request: under CPU starvation a handshake outlasts its timeout, and an
 * answer written then was queued until the handshake completed, after which the node read the
 * request and ran it while the client was told it was malformed. None of those get an answer.
 */
export function clientErrorAnswer(err: NodeJS.ErrnoException): ClientErrorAnswer | undefined {
  const code = typeof err.code === "string" ? err.code : "";
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return { status: 408, code: "RequestTimeout", message: "the request did not arrive in time" };
  }
  // llhttp's own failures and callback errors are the node's problem, not the client's bytes.
  if (!code.startsWith("HPE_") || code === "HPE_INTERNAL" || code.startsWith("HPE_CB_")) return undefined;
  if (code === "HPE_HEADER_OVERFLOW") {
    return {
      status: 431,
      code: "RequestHeaderFieldsTooLarge",
      message: "the request line and headers exceed the node's limit",
    };
  }
  if (code === "HPE_CHUNK_EXTENSIONS_OVERFLOW") {
    return {
      status: 413,
      code: "RequestBodyTooLarge",
      message: "the request's chunk extensions exceed the node's limit",
    };
  }
  const reason = (err as { reason?: unknown }).reason;
  return {
    status: 400,
    code: "InvalidInput",
    message: `malformed HTTP request (${code})${typeof reason === "string" && reason !== "" ? `: ${reason}` : ""}`,
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  413: "Payload Too Large",
  431: "Request Header Fields Too Large",
};

/** The client went away: closing its connection is all there is to do, and not worth a line. */
const PEER_GONE = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "ERR_STREAM_PREMATURE_CLOSE"]);

/** At most one log line per this long about connections closed on other errors. */
const LOG_EVERY_MS = 10_000;

/**
 * The `clientError` handler of the node's HTTPS server. Requests the HTTP parser refused
 * (malformed, headers too large) or that came too slowly are answered in Coco's error shape and
 * their connection closed: after a parse error its bytes cannot be trusted. Every other error
 * closes the connection without an answer (`clientErrorAnswer` says why); those other than a
 * peer going away are logged, one line per 10 s at most, with their codes and counts.
 */
export function clientErrorHandler(
  log: Pick<Logger, "warn">,
  now: () => number = Date.now,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  let lastLine = Number.NEGATIVE_INFINITY;
  let unlogged = new Map<string, number>();
  const note = (err: NodeJS.ErrnoException) => {
    const code = typeof err.code === "string" ? err.code : (err.name ?? "Error");
    unlogged.set(code, (unlogged.get(code) ?? 0) + 1);
    if (now() - lastLine < LOG_EVERY_MS) return;
    lastLine = now();
    // Codes and library messages only: never the bytes the client sent.
    log.warn(
      { code, error: err.message, closedByCode: Object.fromEntries(unlogged) },
      "closed a client connection without an answer: an error that is not a malformed request",
    );
    unlogged = new Map();
  };
  return (err, socket) => {
    const answer = clientErrorAnswer(err);
    // A response still under way on this connection (pipelined requests) belongs to an earlier,
    // well-formed request: an answer written now would read as that request's. Close instead.
    const busy = (socket as { _httpMessage?: unknown })._httpMessage != null;
    if (answer === undefined || busy || socket.destroyed || !socket.writable) {
      if (answer === undefined && !PEER_GONE.has(err.code ?? "")) note(err);
      socket.destroy();
      return;
    }
    const body = JSON.stringify({ error: { code: answer.code, message: answer.message } });
    // end() flushes the answer through TLS; a client that never reads it is cut off soon after.
    socket.end(
      `HTTP/1.1 ${answer.status} ${STATUS_TEXT[answer.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  };
}
