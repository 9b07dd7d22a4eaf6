/** What the e2e harness hands tests: nodes, replies, request options. */
export interface NetNode {
  /** `node0`, `node1`, ...: the sandbox's name for it. */
  name: string;
  id: string;
  /** `127.0.0.1:<port>` */
  rpc: string;
  config: string;
  ledgerDir: string;
  /** The process serving this node now (changes on restart). */
  pid: number;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are loosely typed JSON
  json<T = any>(): T;
  /** The `code` of a JSON error body, if any. */
  errorCode: string | undefined;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is, in place of `body`'s JSON. */
  rawBody?: Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface GovPostOptions {
  /** For ballots and withdrawals: the proposal's id, which the signature covers. */
  proposalId?: string;
  /** Who signs: member0 (default), or user0, who is no member. */
  as?: "member" | "user";
  timeoutMs?: number;
}

export interface Credentials {
  ca: string;
  cert: string;
  key: string;
}

export interface CliResult {
  /** The exit code, or null if the process was killed (e.g. at the time-out). */
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface GovCliOptions {
  /** Who signs: `member0` (default) or another member whose `<name>_cert.pem`/`_privk.pem` are in the directory. */
  as?: string;
  /** The node to send it to; the first node by default. */
  node?: NetNode;
  timeoutMs?: number;
}

export interface ConsensusStatus {
  id: string;
  role: string;
  view: number;
  leader: string | null;
  commitSeqno: number;
  lastSeqno: number;
  /** The active configurations: the committed one, then any appended after the commit point. */
  configs?: Array<{ seqno: number; nodes: string[] }>;
}
