import type { IncomingHttpHeaders } from "node:http";
import { Agent, request } from "node:https";

/** How long a request may go without any traffic before it fails. */
const IDLE_TIMEOUT_MS = 300_000;

/** How a kept-alive connection closed by the server under a request shows itself. */
const STALE_CODES = new Set(["ECONNRESET", "EPIPE"]);

/**
 * Requests that may be sent twice without doing twice what they ask: idempotent methods, and
 * signed governance requests (COSE), which the service refuses as replays once it has applied
 * one (src/gov/replay.ts).
 */
const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);
function replayable(method: string, headers: Record<string, string> | undefined): boolean {
  if (IDEMPOTENT.has(method.toUpperCase())) return true;
  const type = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === "content-type")?.[1];
  return type?.split(";")[0]?.trim().toLowerCase() === "application/cose";
}

/** A request reset before any answer on a reused connection (see `send`). */
class StaleConnectionError extends Error {
  constructor(readonly original: NodeJS.ErrnoException) {
    super(original.message, { cause: original });
  }
}

export interface HttpAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * HTTPS requests over kept-alive connections that trust only the pinned service certificate.
 * node:https rather than undici: a `coco gov` call is short, and loading undici (its HTTP parser
 * is WebAssembly) cost it about 0.25 s of CPU, as much as the rest of the call.
 */
export class HttpsTransport {
  private readonly agent: Agent;

  constructor(tls: { ca: string; cert?: string; key?: string }) {
    this.agent = new Agent({ keepAlive: true, ...tls });
  }

  /**
   * Sends one request. A kept-alive connection the node closed for idleness (its `rpc.idleTimeoutMs`,
   * announced in `Keep-Alive: timeout=`) can be closed just as a request goes out on it: the agent
   * retires connections a second before the announced time, but a stalled event loop on either
   * side eats that margin, and the request is then reset unread. Such a request is sent again
   * once on a new connection if sending it twice is harmless (`replayable`): a reset before any
   * answer may also mean the node read it and then died. Other requests, a reset on a fresh
   * connection, or one after any answer began, are the caller's error.
   */
  async send(
    url: string | URL,
    opts: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
  ): Promise<HttpAnswer> {
    try {
      return await this.sendOnce(url, opts);
    } catch (e) {
      if (!(e instanceof StaleConnectionError)) throw e;
      if (!replayable(opts.method ?? "GET", opts.headers)) throw e.original;
      return this.sendOnce(url, opts).catch((again: unknown) => {
        throw again instanceof StaleConnectionError ? again.original : again;
      });
    }
  }

  private sendOnce(
    url: string | URL,
    opts: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array },
  ): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
      const req = request(
        url,
        {
          method: opts.method ?? "GET",
          agent: this.agent,
          headers: { ...opts.headers, ...(body ? { "content-length": String(body.length) } : {}) },
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.once("error", reject);
          res.once("end", () =>
            resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        },
      );
      // As undici's default: a server that stops answering fails the call rather than hanging it.
      req.setTimeout(IDLE_TIMEOUT_MS, () =>
        req.destroy(
          Object.assign(new Error(`no answer from ${String(url)} for ${IDLE_TIMEOUT_MS / 1000} s`), {
            code: "ETIMEDOUT",
          }),
        ),
      );
      req.once("error", (e: NodeJS.ErrnoException) => {
        const stale = req.reusedSocket && !answered && STALE_CODES.has(e.code ?? "");
        reject(stale ? new StaleConnectionError(e) : e);
      });
      req.end(body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}
