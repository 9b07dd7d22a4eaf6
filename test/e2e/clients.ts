/**
 * The e2e tests' HTTPS clients: user0 for app and node calls, member0 for signed governance
 * writes (following a backup's 307), each pinning the service certificate; and the questions
 * tests ask every node (consensus status, commit point, the primary, the records it holds).
 */
import { Agent, request } from "undici";
import { type GovMessageType, signGovRequest } from "../../src/gov/index.ts";
import type { CallOptions, ConsensusStatus, Credentials, GovPostOptions, NetNode, Reply } from "./types.ts";
import { budget, waitUntil } from "./waits.ts";

/** The governance API version every `/gov` request names. */
export const GOV_API = "api-version=2024-07-01";
/** How many 307s a governance write follows (a backup names the primary). */
const GOV_REDIRECTS = 3;

export abstract class NetworkClients {
  abstract readonly nodes: NetNode[];
  private readonly agents = new Map<string, Agent>();
  protected abstract credentials: Credentials;
  protected abstract readonly memberCredentials: Credentials;

  /** A client for `rpc` (`host:port`), presenting user0's certificate. */
  private agentFor(rpc: string): Agent {
    let agent = this.agents.get(rpc);
    if (!agent) {
      // Each request carries its own deadline, stretched by the load (`send`); the connection's
      // own limit must not be the shorter one: at load ~28 a TLS connect took over 2 s.
      agent = new Agent({
        connect: { ...this.credentials, timeout: budget(10_000) },
        keepAliveTimeout: 2_000,
      });
      this.agents.set(rpc, agent);
    }
    return agent;
  }

  /** One HTTPS request as user0. Throws on network errors and time-outs. */
  call(node: NetNode, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    return this.send(node.rpc, method, path, opts);
  }

  /**
   * A signed governance write (`/gov/members/...`, `?api-version` added): a COSE_Sign1 request
   * of `type` over `body`'s JSON, signed by member0 (or, to show it is refused, by user0). A
   * backup's 307 is followed to the primary it names. Throws on network errors and time-outs;
   * an answer may take as long as the transaction takes to commit.
   */
  async govPost(
    node: NetNode,
    path: string,
    type: GovMessageType,
    body: unknown,
    opts: GovPostOptions = {},
  ): Promise<Reply> {
    const signer = opts.as === "user" ? this.credentials : this.memberCredentials;
    const rawBody = signGovRequest({
      keyPem: signer.key,
      certPem: signer.cert,
      type,
      createdAt: Math.floor(Date.now() / 1000),
      ...(opts.proposalId ? { proposalId: opts.proposalId } : {}),
      payload: new TextEncoder().encode(body === undefined ? "" : JSON.stringify(body)),
    });
    let rpc = node.rpc;
    let target = `${path}?${GOV_API}`;
    for (let hop = 0; ; hop++) {
      const reply = await this.send(rpc, "POST", target, {
        rawBody,
        headers: { "content-type": "application/cose" },
        timeoutMs: opts.timeoutMs ?? 5_000,
      });
      const location = reply.headers.location;
      if (reply.status !== 307 || typeof location !== "string" || hop === GOV_REDIRECTS) return reply;
      const next = new URL(location);
      rpc = next.host;
      target = `${next.pathname}${next.search}`;
    }
  }

  private async send(rpc: string, method: string, path: string, opts: CallOptions): Promise<Reply> {
    const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const contentType = opts.body !== undefined ? { "content-type": "application/json" } : {};
    const timeout = AbortSignal.timeout(budget(opts.timeoutMs ?? 5_000));
    const res = await request(`https://${rpc}${path}`, {
      method: method as "GET",
      dispatcher: this.agentFor(rpc),
      headers: { ...contentType, ...opts.headers },
      body: body === undefined ? undefined : Buffer.from(body),
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
    const text = await res.body.text();
    let errorCode: string | undefined;
    try {
      errorCode = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      // not JSON
    }
    return {
      status: res.statusCode,
      headers: res.headers,
      text,
      json: () => JSON.parse(text),
      errorCode,
    };
  }

  async consensus(node: NetNode, timeoutMs = 1_000): Promise<ConsensusStatus> {
    const reply = await this.call(node, "GET", "/node/consensus", { timeoutMs });
    if (reply.status !== 200) throw new Error(`${node.name} /node/consensus answered ${reply.status}`);
    return reply.json<ConsensusStatus>();
  }

  /** The commit point `/node/commit` reports, as a seqno. */
  async commitSeqno(node: NetNode): Promise<number> {
    const reply = await this.call(node, "GET", "/node/commit", { timeoutMs: 2_000 });
    const txid = reply.json<{ transaction_id: string }>().transaction_id;
    return Number(txid.split(".")[1]);
  }

  /**
   * The node that says it is primary in the highest view, among those that answer within a
   * second (a killed or paused node does not). Waits for one to exist.
   */
  async primary(timeoutMs = 20_000, among: NetNode[] = this.nodes): Promise<NetNode> {
    let found: { node: NetNode; view: number } | undefined;
    await waitUntil("a primary", timeoutMs, async () => {
      const answers = await Promise.all(
        among.map((node) =>
          this.consensus(node).then(
            (s) => ({ node, s }),
            () => undefined,
          ),
        ),
      );
      found = undefined;
      for (const a of answers) {
        if (a?.s.role === "primary" && (!found || a.s.view > found.view))
          found = { node: a.node, view: a.s.view };
      }
      return found !== undefined;
    });
    return found!.node;
  }

  /** Every private (or public) log record a node holds (its local state, paged). */
  async records(node: NetNode, kind: "private" | "public" = "private"): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    let after: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const query = `limit=1000${after === undefined ? "" : `&after=${encodeURIComponent(after)}`}`;
      const reply = await this.call(node, "GET", `/app/log/${kind}/range?${query}`, { timeoutMs: 10_000 });
      if (reply.status !== 200) throw new Error(`${node.name} range answered ${reply.status}: ${reply.text}`);
      const body = reply.json<{ entries: Array<{ id: number; msg: string }>; next?: string }>();
      for (const { id, msg } of body.entries) out.set(id, msg);
      if (body.next === undefined) return out;
      after = body.next;
    }
    throw new Error(`${node.name}: too many pages of records`);
  }

  protected async closeAgents(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.destroy()));
  }
}
