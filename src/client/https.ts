import type { IncomingHttpHeaders } from "node:http";
import { Agent, request } from "node:https";

/** How long a request may go without any traffic before it fails. */
const IDLE_TIMEOUT_MS = 300_000;

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

  send(
    url: string | URL,
    opts: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
  ): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
      const req = request(
        url,
        {
          method: opts.method ?? "GET",
          agent: this.agent,
          headers: { ...opts.headers, ...(body ? { "content-length": String(body.length) } : {}) },
        },
        (res) => {
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
      req.once("error", reject);
      req.end(body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}
