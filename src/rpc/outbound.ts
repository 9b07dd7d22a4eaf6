// Outbound HTTPS from app handlers: only to destinations governance allow-listed, with a bounded
// time and size, executed once per call (re-runs of the handler reuse the response), and each
// exchange written to the transaction so an auditor of the ledger sees what the app saw.
import { request as httpsRequest } from "node:https";
import { HttpError, type OutboundRequest, type OutboundResponse } from "../apps/index.ts";
import { sha256, toHex } from "../crypto/index.ts";
import type { Tx, WriteSet } from "../kv/index.ts";

/** Allow-listed origins (`https://host[:port]`) → `{ca_cert?}`, set by `set_outbound_destination`. */
export const OUTBOUND_DESTINATIONS = "public:coco.gov.outbound.destinations";
/** The exchanges, by digest: encrypted in the ledger like any private map. */
export const OUTBOUND_RESPONSES = "coco.outbound.responses";

export const OUTBOUND_TIMEOUT_MS = 5_000;
export const OUTBOUND_MAX_RESPONSE_BYTES = 1024 * 1024;
const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH"]);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Normalized {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array;
  key: string;
}

function normalize(req: OutboundRequest): Normalized {
  if (typeof req !== "object" || req === null || typeof req.url !== "string") {
    throw new HttpError(500, "InternalError", "fetch: the request must be {url, method?, headers?, body?}");
  }
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new HttpError(500, "InternalError", `fetch: ${JSON.stringify(req.url)} is not a URL`);
  }
  if (url.protocol !== "https:") throw new HttpError(500, "InternalError", "fetch: only https:// URLs");
  const method = (req.method ?? "GET").toUpperCase();
  if (!METHODS.has(method)) throw new HttpError(500, "InternalError", `fetch: unsupported method ${method}`);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = String(v);
  const body = typeof req.body === "string" ? encoder.encode(req.body) : (req.body ?? new Uint8Array(0));
  const key = JSON.stringify([method, url.href, headers, Buffer.from(body).toString("base64")]);
  return { url, method, headers, body, key };
}

function allowEntry(tx: Tx, origin: string): { ca_cert?: string } | undefined {
  const raw = tx.map(OUTBOUND_DESTINATIONS).get(encoder.encode(origin));
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(decoder.decode(raw)) as { ca_cert?: string };
  } catch {
    return undefined;
  }
}

function send(n: Normalized, ca: string | undefined): Promise<Omit<OutboundResponse, "digest">> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      n.url,
      {
        method: n.method,
        headers: { ...n.headers, "content-length": String(n.body.length) },
        timeout: OUTBOUND_TIMEOUT_MS,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > OUTBOUND_MAX_RESPONSE_BYTES) {
            req.destroy(new Error(`the response is larger than ${OUTBOUND_MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
          }
          resolve({ status: res.statusCode ?? 0, headers, body: new Uint8Array(Buffer.concat(chunks)) });
        });
        res.on("error", reject);
      },
    );
    // One deadline for the whole exchange, not per socket event.
    const deadline = setTimeout(
      () => req.destroy(new Error(`no complete answer within ${OUTBOUND_TIMEOUT_MS} ms`)),
      OUTBOUND_TIMEOUT_MS,
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${OUTBOUND_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.on("close", () => clearTimeout(deadline));
    req.end(n.body);
  });
}

/**
 * The outbound calls of one app call: created once per call, so the handler's re-runs (after a
 * conflict, or a sandboxed handler waiting for a response) reuse what was fetched.
 */
export class OutboundSession {
  /** Made on the first fetch: most calls fetch nothing, and this session exists for every one. */
  private fetched: Map<string, OutboundResponse> | undefined;

  constructor(
    private readonly allowed: boolean,
    private readonly nowMs: () => number,
  ) {}

  /** The response for `req` fetched earlier in this call, recorded again in `tx`. */
  before(tx: Tx, req: OutboundRequest): OutboundResponse | undefined {
    const n = normalize(req);
    const found = this.fetched?.get(n.key);
    if (found) this.record(tx, n, found);
    return found;
  }

  async fetch(tx: Tx, req: OutboundRequest): Promise<OutboundResponse> {
    const n = normalize(req);
    const known = this.fetched?.get(n.key);
    if (known) {
      this.record(tx, n, known);
      return known;
    }
    if (!this.allowed) {
      throw new HttpError(
        500,
        "InternalError",
        "fetch: only readwrite endpoints may call out (they run once, on the primary)",
      );
    }
    const entry = allowEntry(tx, n.url.origin);
    if (entry === undefined) {
      throw new HttpError(
        500,
        "InternalError",
        `fetch: ${n.url.origin} is not an allow-listed destination (set_outbound_destination)`,
      );
    }
    let answer: Omit<OutboundResponse, "digest">;
    try {
      answer = await send(n, entry.ca_cert);
    } catch (e) {
      throw new HttpError(502, "OutboundFailed", `fetch ${n.url.origin}: ${(e as Error).message}`);
    }
    const exchange = this.exchange(n, answer);
    // Fields named, not spread: a spread copies property by property on every fetch.
    const response: OutboundResponse = {
      status: answer.status,
      headers: answer.headers,
      body: answer.body,
      digest: toHex(sha256(exchange)),
    };
    this.fetched ??= new Map();
    this.fetched.set(n.key, response);
    this.recorded ??= new Map();
    this.recorded.set(response.digest, exchange);
    this.record(tx, n, response);
    return response;
  }

  private exchange(n: Normalized, answer: Omit<OutboundResponse, "digest">): Uint8Array {
    return encoder.encode(
      JSON.stringify({
        request: {
          method: n.method,
          url: n.url.href,
          headers: n.headers,
          body: Buffer.from(n.body).toString("base64"),
        },
        response: {
          status: answer.status,
          headers: answer.headers,
          body: Buffer.from(answer.body).toString("base64"),
        },
        fetchedAt: this.nowMs(),
      }),
    );
  }

  /** The exact bytes each digest names, written again by every re-run of the handler. */
  private recorded: Map<string, Uint8Array> | undefined;

  /**
   * Whether this call's writes to `coco.outbound.responses` are exactly exchanges this session
   * fetched: an app writing there itself (a made-up exchange, or removing one) would forge the
   * record an auditor reads, so such a transaction is refused.
   */
  wroteOnlyItsOwn(writes: WriteSet): boolean {
    const map = writes.find((m) => m.name === OUTBOUND_RESPONSES);
    if (map === undefined) return true;
    return map.updates.every(({ key, value }) => {
      const mine = this.recorded?.get(decoder.decode(key));
      return mine !== undefined && value !== null && Buffer.from(value).equals(mine);
    });
  }

  private record(tx: Tx, n: Normalized, response: OutboundResponse): void {
    const bytes = this.recorded?.get(response.digest) ?? this.exchange(n, response);
    tx.map(OUTBOUND_RESPONSES).set(encoder.encode(response.digest), bytes);
  }
}
