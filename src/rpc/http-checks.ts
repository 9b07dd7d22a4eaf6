import type { Socket } from "node:net";

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

/** The status, code and message for a request Node's HTTP parser refused. */
function clientErrorAnswer(err: NodeJS.ErrnoException): { status: number; code: string; message: string } {
  if (err.code === "HPE_HEADER_OVERFLOW") {
    return {
      status: 431,
      code: "RequestHeaderFieldsTooLarge",
      message: "the request line and headers exceed the node's limit",
    };
  }
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return { status: 408, code: "RequestTimeout", message: "the request did not arrive in time" };
  }
  const reason = (err as { reason?: unknown }).reason;
  return {
    status: 400,
    code: "InvalidInput",
    message: `malformed HTTP request${typeof reason === "string" ? `: ${reason}` : ""}`,
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};

/**
 * Answers a request the HTTP parser refused (malformed, headers too large, too slow) in Coco's
 * error shape, then closes the connection: after a parse error its bytes cannot be trusted.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const { status, code, message } = clientErrorAnswer(err);
  const body = JSON.stringify({ error: { code, message } });
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // end() flushes the answer through TLS; a client that never reads it is cut off soon after.
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}
