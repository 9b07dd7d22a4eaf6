import type { Tx } from "../kv/index.ts";

/** A single policy, or `{all_of: [...]}`: every one of them must pass (src/rpc/auth-policies.ts). */
export type AuthPolicy =
  | "user_cert"
  | "member_cert"
  | "any_cert"
  | "no_auth"
  | "jwt"
  | "user_cose_sign1"
  | "member_cose_sign1"
  | { all_of: AuthPolicy[] };
export type HttpMethod = "GET" | "PUT" | "POST" | "DELETE" | "PATCH";

/** Who called, as established by the first authentication policy that passed. */
export type Caller =
  | { policy: "user_cert"; id: string; certPem: string }
  | { policy: "member_cert"; id: string; certPem: string }
  | { policy: "no_auth" }
  /** A bearer JWT whose signature, issuer, audience and validity dates were checked. */
  | { policy: "jwt"; keyIssuer: string; header: Record<string, unknown>; payload: Record<string, unknown> }
  /** A COSE_Sign1 request body signed by a registered user or member; `content` is its payload. */
  | { policy: "user_cose_sign1" | "member_cose_sign1"; id: string; certPem: string; content: Uint8Array }
  /** Every policy of an `all_of` passed; one caller per constituent, in order. */
  | { policy: "all_of"; callers: Caller[] };

export interface AppRequest {
  method: HttpMethod;
  /** The path below `/app`, e.g. `/log/private`. */
  path: string;
  /** Path and query as the client sent them, e.g. `/app/log/private?id=1`. */
  url: string;
  /** Values of `{name}` segments of the endpoint's path template. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  /** The body parsed as JSON; throws a 400 `InvalidInput` error if it is not. */
  json<T = unknown>(): T;
  text(): string;
}

export interface AppResponse {
  status?: number;
  headers?: Record<string, string>;
  /** Serialised as JSON unless it is a string or bytes. */
  body?: unknown;
  /** Overrides the endpoint's rule for this answer: apply (or drop) the writes whatever the status. */
  applyWrites?: boolean;
}

/** An outbound HTTPS request from a handler, to a destination governance allow-listed. */
export interface OutboundRequest {
  url: string;
  method?: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

/** What the destination answered, as recorded with the transaction. */
export interface OutboundResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  /** Hex SHA-256 of the recorded exchange: its key in `coco.outbound.responses`. */
  digest: string;
}

/**
 * Thrown by an executor whose handler needs a response it does not have yet (a sandboxed JS
 * handler cannot wait): once `fetch` has it, the handler runs again in a fresh transaction.
 */
export class RerunWithFetched extends Error {
  constructor() {
    super("the handler runs again with the fetched response");
  }
}

export interface HandlerContext {
  request: AppRequest;
  caller: Caller;
  tx: Tx;
  /** Binds a digest of app-defined claims into this transaction's receipt. */
  setClaimsDigest(digest: Uint8Array): void;
  /** Runs `callback` with the transaction id the answer names, once the answer is decided. */
  onAnswer?(callback: (txid: string, status: number) => void): void;
  /**
   * Outbound HTTPS to a destination governance allow-listed (readwrite endpoints: they run once,
   * on the primary). The exchange is written to the transaction, so auditors see what the app saw.
   */
  fetch?(request: OutboundRequest): Promise<OutboundResponse>;
  /** The response `fetch` already got for this same request in this call (recorded again), if any. */
  fetchedBefore?(request: OutboundRequest): OutboundResponse | undefined;
}

export type EndpointMode = "readwrite" | "readonly" | "historical";

export interface EndpointOptions {
  auth: AuthPolicy[];
  /** `historical`: reads only, like `readonly`; the handler itself reads past states (JS apps). */
  mode: EndpointMode;
  /**
   * The mode of one request, for endpoints whose requests differ (a JSON-RPC body that sends a
   * transaction writes; one that reads does not); `mode` when absent.
   */
  modeOf?: (request: Pick<AppRequest, "method" | "path" | "headers" | "body">) => EndpointMode;
  /**
   * Where a request that reaches a backup runs: `sometimes` (default) on the primary for writes,
   * linearizable reads and forwarded sessions; `always` on the primary; `never` where it arrived.
   */
  forwarding?: "never" | "sometimes" | "always";
  /** Answer only once the transaction is committed, without the client asking. */
  waitForCommit?: boolean;
  /**
   * Run this endpoint's writing requests one at a time on the primary, from the start of their
   * KV transaction to its commit (not while waiting for the commit): for apps whose every write
   * reads and writes the same keys (the EVM's chain head), which would otherwise conflict and
   * re-run under concurrency. Reads are not held. The turn is per endpoint object: an executor
   * must hand out the same object for every request.
   */
  exclusive?: boolean;
  /** Which statuses apply the transaction's writes; default: 2xx only. */
  applyWrites?: (status: number) => boolean;
  /**
   * The query parameters this endpoint takes; when set, any other is refused with 400. Set it on
   * endpoints that page, so a misspelt paging parameter cannot send a client's loop round forever.
   */
  query?: readonly string[];
}

export type Handler = (ctx: HandlerContext) => AppResponse | Promise<AppResponse>;

export interface Endpoint extends EndpointOptions {
  method: HttpMethod;
  /** Path template below `/app`, with `{name}` segments. */
  path: string;
  handler: Handler;
}

/** An error an app throws to answer with a clean JSON error. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
