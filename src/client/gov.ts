import { certFingerprint } from "../crypto/index.ts";
import { type GovMessageType, type ProposalView, signGovRequest } from "../gov/index.ts";
import { CocoClientError } from "./client.ts";
import { HttpsTransport } from "./https.ts";

export const GOV_API = "api-version=2024-07-01";
const MAX_REDIRECTS = 3;

export interface GovClientOptions {
  /** e.g. `https://127.0.0.1:8000`: any node (writes are sent on to the primary). */
  url: string;
  serviceCertPem: string;
  /** The member's certificate and private key: every write is a COSE_Sign1 request signed with it. */
  memberCertPem: string;
  memberKeyPem: string;
  /** Seconds since the epoch, for `ccf.gov.msg.created_at` (defaults to the real clock). */
  now?: () => number;
}

/** A member's client for the governance API: signed proposals, ballots, withdrawals, acks. */
export class GovClient {
  private readonly http: HttpsTransport;
  readonly memberId: string;

  constructor(private readonly options: GovClientOptions) {
    this.http = new HttpsTransport({ ca: options.serviceCertPem });
    this.memberId = certFingerprint(options.memberCertPem);
  }

  close(): Promise<void> {
    return this.http.close();
  }

  /** Makes the member Active: fetches the state digest to acknowledge and signs the ack. */
  async activate(): Promise<void> {
    const { stateDigest } = await this.signed<{ stateDigest: string }>(
      `/gov/members/state-digests/${this.memberId}:update`,
      "state_digest",
      new Uint8Array(),
    );
    await this.signed(
      `/gov/members/state-digests/${this.memberId}:ack`,
      "ack",
      new TextEncoder().encode(JSON.stringify({ stateDigest })),
    );
  }

  propose(proposal: { actions: Array<{ name: string; args?: unknown }> }): Promise<ProposalView> {
    return this.signed(
      "/gov/members/proposals:create",
      "proposal",
      new TextEncoder().encode(JSON.stringify(proposal)),
    );
  }

  /** Votes with a ballot script (`export function vote (proposal, proposerId) {...}`). */
  vote(proposalId: string, ballot: string): Promise<ProposalView> {
    return this.signed(
      `/gov/members/proposals/${proposalId}/ballots/${this.memberId}:submit`,
      "ballot",
      new TextEncoder().encode(JSON.stringify({ ballot })),
      proposalId,
    );
  }

  withdraw(proposalId: string): Promise<ProposalView> {
    return this.signed(
      `/gov/members/proposals/${proposalId}:withdraw`,
      "withdrawal",
      new Uint8Array(),
      proposalId,
    );
  }

  /** This member's recovery share, still encrypted to its encryption key. */
  async encryptedShare(): Promise<string> {
    return (await this.get<{ encryptedShare: string }>(`/gov/recovery/encrypted-shares/${this.memberId}`))
      .encryptedShare;
  }

  /** Submits this member's decrypted recovery share (base64) to a recovering service. */
  submitShare(shareBase64: string): Promise<{ message: string }> {
    return this.signed(
      `/gov/recovery/members/${this.memberId}:recover`,
      "recovery_share",
      new TextEncoder().encode(JSON.stringify({ share: shareBase64 })),
    );
  }

  show(proposalId: string): Promise<ProposalView> {
    return this.get(`/gov/members/proposals/${proposalId}`);
  }

  actions(proposalId: string): Promise<unknown> {
    return this.get(`/gov/members/proposals/${proposalId}/actions`);
  }

  async get<T>(path: string): Promise<T> {
    const res = await this.http.send(`${this.options.url}${path}${path.includes("?") ? "&" : "?"}${GOV_API}`);
    return this.answer<T>(res.statusCode, res.body.toString("utf8"));
  }

  private async signed<T>(
    path: string,
    type: GovMessageType,
    payload: Uint8Array,
    proposalId?: string,
  ): Promise<T> {
    const bytes = signGovRequest({
      keyPem: this.options.memberKeyPem,
      certPem: this.options.memberCertPem,
      type,
      createdAt: Math.floor(this.options.now?.() ?? Date.now() / 1000),
      ...(proposalId ? { proposalId } : {}),
      payload,
    });
    let url = `${this.options.url}${path}?${GOV_API}`;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.http.send(url, {
        method: "POST",
        headers: { "content-type": "application/cose" },
        body: bytes,
      });
      const text = res.body.toString("utf8");
      const location = res.headers.location;
      if (res.statusCode === 307 && typeof location === "string") {
        url = location;
        continue;
      }
      return this.answer<T>(res.statusCode, text);
    }
    throw new CocoClientError(508, "TooManyRedirects", `more than ${MAX_REDIRECTS} redirects from ${path}`);
  }

  private answer<T>(status: number, text: string): T {
    if (status >= 400) {
      let code = "Error";
      let message = text;
      try {
        const error = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
        if (error) ({ code, message } = error);
      } catch {}
      throw new CocoClientError(status, code, message);
    }
    if (status === 204 || text.length === 0) return undefined as T;
    return JSON.parse(text) as T;
  }
}
