import { Agent, request } from "undici";
import { CocoClientError, GovClient } from "../client/index.ts";
import type { ConsoleIdentity } from "./identity.ts";

const REQUEST_TIMEOUT_MS = 3_000;

/** An answer from a node, or why there was none. */
export type NodeAnswer<T> =
  | { ok: true; status: number; body: T; contentType: string }
  | { ok: false; status: number; code: string; message: string };

/**
 * The console's side of the network: every call goes over TLS pinned to the service certificate,
 * with the member's certificate as the client certificate (mutual TLS). The member's key stays in
 * this process; the browser only ever sees what the nodes answered.
 */
export class Gateway {
  private readonly agent: Agent;
  /** Node addresses known so far (start list, then every node the service lists). */
  private readonly known: Set<string>;
  /** Addresses that answered their last call, most recent first. */
  private preferred: string | undefined;
  primaryAddress: string | undefined;

  constructor(readonly identity: ConsoleIdentity) {
    this.agent = new Agent({
      connect: {
        ca: identity.serviceCertPem,
        cert: identity.certPem,
        key: identity.keyPem,
        // Pinned to the service certificate: a node's certificate must be one it endorsed.
        rejectUnauthorized: true,
        timeout: REQUEST_TIMEOUT_MS,
      },
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: 2_000,
    });
    this.known = new Set(identity.nodes);
  }

  addresses(): string[] {
    return [...this.known];
  }

  learn(addresses: Iterable<string>): void {
    for (const a of addresses) if (a) this.known.add(a);
  }

  /** One call to one node. Network failures become `ok: false` with code `Unreachable`. */
  async call<T>(
    address: string,
    path: string,
    opts: { method?: "GET" | "POST"; body?: unknown; accept?: string } = {},
  ): Promise<NodeAnswer<T>> {
    try {
      const res = await request(`https://${address}${path}`, {
        method: opts.method ?? "GET",
        dispatcher: this.agent,
        headers: {
          ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
          ...(opts.accept ? { accept: opts.accept } : {}),
        },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      });
      const text = await res.body.text();
      const contentType = String(res.headers["content-type"] ?? "");
      const body = contentType.startsWith("application/json") && text ? JSON.parse(text) : text;
      if (res.statusCode >= 400) {
        const error = (body as { error?: { code?: string; message?: string } })?.error;
        return {
          ok: false,
          status: res.statusCode,
          code: error?.code ?? "Error",
          message: error?.message ?? text,
        };
      }
      this.preferred = address;
      return { ok: true, status: res.statusCode, body: body as T, contentType };
    } catch (e) {
      return { ok: false, status: 502, code: "Unreachable", message: unreachable(address, e as Error) };
    }
  }

  /**
   * A read from any node: the primary first (freshest), then the last node that answered, then
   * the rest. Errors from a node that did answer are returned as they are.
   */
  async read<T>(path: string, opts: { accept?: string } = {}): Promise<NodeAnswer<T>> {
    let last: NodeAnswer<T> | undefined;
    for (const address of this.order()) {
      const answer = await this.call<T>(address, path, opts);
      if (answer.ok || answer.code !== "Unreachable") return answer;
      last = answer;
    }
    return last ?? { ok: false, status: 502, code: "Unreachable", message: "no node is known" };
  }

  /** Runs a governance call with a client for the first node that can be reached. */
  async governance<T>(work: (gov: GovClient) => Promise<T>): Promise<T> {
    let lastError: Error | undefined;
    for (const address of this.order()) {
      const gov = new GovClient({
        url: `https://${address}`,
        serviceCertPem: this.identity.serviceCertPem,
        memberCertPem: this.identity.certPem,
        memberKeyPem: this.identity.keyPem,
      });
      try {
        return await work(gov);
      } catch (e) {
        if (e instanceof CocoClientError) throw e;
        // A connection failure: this node is down; the next one may do.
        lastError = e as Error;
      } finally {
        await gov.close();
      }
    }
    throw new CocoClientError(
      502,
      "Unreachable",
      unreachable("any node", lastError ?? new Error("none known")),
    );
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private order(): string[] {
    const first = [this.primaryAddress, this.preferred].filter((a): a is string => a !== undefined);
    return [...new Set([...first, ...this.known])];
  }
}

function unreachable(address: string, e: Error): string {
  const cause = (e as Error & { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? e.message;
  return `cannot reach ${address} (${detail})`;
}
