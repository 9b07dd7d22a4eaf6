/** The console server's JSON API. The browser holds no key: every signature is made by the server. */

export interface ConsoleError {
  what: string;
  code: string;
  message: string;
  action: string;
  status: number;
}

export class ApiError extends Error {
  constructor(readonly detail: ConsoleError) {
    super(`${detail.what}: ${detail.message}`);
  }
}

async function answer<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const error = (body as { error?: ConsoleError } | null)?.error;
    throw new ApiError(
      error ?? {
        what,
        code: `HTTP${res.status}`,
        message: text.slice(0, 300) || res.statusText,
        action: "Check that the console is still running (npm start), then reload.",
        status: res.status,
      },
    );
  }
  return body as T;
}

function offline(what: string, e: unknown): never {
  if (e instanceof ApiError) throw e;
  throw new ApiError({
    what,
    code: "ConsoleUnreachable",
    message: `the console server did not answer (${(e as Error).message})`,
    action: "Check that the console (or npm start) is still running, then reload.",
    status: 0,
  });
}

export async function get<T>(path: string, what: string): Promise<T> {
  try {
    return await answer<T>(await fetch(path, { headers: { accept: "application/json" } }), what);
  } catch (e) {
    offline(what, e);
  }
}

export async function post<T>(path: string, body: unknown, what: string): Promise<T> {
  try {
    const res = await fetch(path, {
      method: "POST",
      // The header tells the console this came from its own page (see src/console/guard.ts).
      headers: { "content-type": "application/json", "x-coco-console": "1" },
      body: JSON.stringify(body ?? {}),
    });
    return await answer<T>(res, what);
  } catch (e) {
    offline(what, e);
  }
}

export interface Session {
  memberId: string;
  subject: string;
  recoveryKey: boolean;
  serviceCertificate: string;
  serviceCertificateId: string;
  serviceSubject: string;
  serviceValidTo: string;
  nodes: string[];
}

export type { NetworkView, NodeView } from "../../src/console/views.ts";

export interface Proposal {
  proposalId: string;
  proposerId: string;
  proposalState: string;
  ballotCount: number;
  finalVotes?: Record<string, boolean>;
  voteFailures?: Record<string, { reason: string }>;
  failure?: { reason: string };
  actions: { actions?: Array<{ name: string; args?: unknown }> } | null;
  ballots: Record<string, string>;
}

export interface Member {
  memberId: string;
  status: string;
  certificate: string | null;
  memberData: unknown;
  publicEncryptionKey?: string;
  recoveryRole?: string;
}

export interface User {
  userId: string;
  certificate: string;
  userData: unknown;
}

export interface Shown {
  text?: string;
  hex?: string;
  length: number;
  truncated?: true;
}

export interface LedgerEntry {
  seqno: number;
  view: number;
  transaction_id: string;
  status: string;
  type: "write_set" | "signature";
  size: number;
  secret_version: number;
  claims_digest: string;
  commit_evidence_digest: string;
  write_set_digest: string;
  leaf: string;
  public_writes: Array<{ map: string; updates: Array<{ key: Shown; value?: Shown; removed?: true }> }>;
  private_domain: { encrypted: true; bytes: number } | null;
}

export interface LedgerPage {
  entries: LedgerEntry[];
  last_seqno: number;
  commit_transaction_id: string;
}
