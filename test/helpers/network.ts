import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { appExecutors } from "../../src/cli/js-apps.ts";
import { CocoClientError, GovClient } from "../../src/client/index.ts";
import { createIdentityCertificate } from "../../src/crypto/index.ts";
import type { ProposalView } from "../../src/gov/index.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";

export interface Identity {
  certPem: string;
  privateKeyPem: string;
}

export async function makeIdentity(name: string): Promise<Identity> {
  return createIdentityCertificate({
    name,
    now: new Date(),
    serial: crypto.getRandomValues(new Uint8Array(16)),
  });
}

/** A ballot in favour of whatever is proposed. */
export const VOTE_YES = "export function vote (proposal, proposerId) { return true }";

/**
 * A certificate validity start for `transition_node_to_trusted` (CCF's constitution requires one,
 * in the X.509 GeneralizedTime form `YYYYMMDDHHMMSSZ`; Coco's ignores it).
 */
export function validFrom(date = new Date()): string {
  return `${date.toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;
}

/** A governance client that signs as `member` (e.g. `https://127.0.0.1:<port>`). */
export function govClient(url: string, serviceCertPem: string, member: Identity): GovClient {
  return new GovClient({
    url,
    serviceCertPem,
    memberCertPem: member.certPem,
    memberKeyPem: member.privateKeyPem,
  });
}

/**
 * Proposes one action and votes for it as the same (Active) member; with a single member that
 * decides it. Throws, with the reason, unless the proposal ends Accepted.
 */
export async function passProposal(gov: GovClient, name: string, args: unknown): Promise<ProposalView> {
  const proposal = await gov.propose({ actions: [{ name, args }] });
  const view = proposal.proposalState === "Open" ? await voteAndSettle(gov, proposal.proposalId) : proposal;
  if (view.proposalState !== "Accepted") {
    throw new Error(`proposal ${name} ended ${view.proposalState}: ${JSON.stringify(view.failure ?? {})}`);
  }
  return view;
}

/**
 * Votes yes. A vote that trusts a node may not commit within the node's commit wait (504) when
 * the new configuration needs that node, which is still starting: then waits for the proposal to
 * settle, as a member would by asking again.
 */
async function voteAndSettle(gov: GovClient, proposalId: string): Promise<ProposalView> {
  try {
    return await gov.vote(proposalId, VOTE_YES);
  } catch (e) {
    if (!(e instanceof CocoClientError && e.code === "CommitTimeout")) throw e;
  }
  // An idle machine's figure, stretched by the load (docs/testing.md, "Flaky under load").
  const deadline = Date.now() + budget(60_000);
  for (;;) {
    const view = await gov.show(proposalId);
    if (view.proposalState !== "Open" || Date.now() > deadline) return view;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface TestNetwork {
  dir: string;
  nodeDir: string;
  running: RunningNode;
  serviceCertPem: string;
  identities: { user: Identity; member: Identity; stranger: Identity };
  call(method: string, path: string, opts?: CallOptions): Promise<CallResult>;
  restart(): Promise<void>;
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface CallOptions {
  as?: "user" | "member" | "stranger" | "none";
  body?: unknown;
  rawBody?: string | Uint8Array;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  bytes: Uint8Array;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are loosely typed JSON
  json<T = any>(): T;
  txid: string | undefined;
}

/** Starts one node in this process on a free port, with a member, a user and a stranger. */
export async function startTestNetwork(settings: Record<string, unknown> = {}): Promise<TestNetwork> {
  const dir = mkdtempSync(join(tmpdir(), "coco-test-"));
  const identities = {
    user: await makeIdentity("user0"),
    member: await makeIdentity("member0"),
    stranger: await makeIdentity("stranger"),
  };
  writeFileSync(join(dir, "member0_cert.pem"), identities.member.certPem);
  writeFileSync(join(dir, "user0_cert.pem"), identities.user.certPem);
  const raw = {
    dir: "node0",
    rpc: { address: "127.0.0.1:0" },
    members: [{ cert: "member0_cert.pem" }],
    openAtNodes: 1,
    users: [{ cert: "user0_cert.pem" }],
    app: "logging",
    log: { level: "error" },
    ...settings,
  };
  const start = async () => {
    const config = parseConfig(raw, dir);
    const log = createLogger({ level: process.env.COCO_TEST_LOG ?? "error", format: "json" });
    const apps = await appExecutors(config, realEnvironment, log);
    const started = await runNode(config, realEnvironment, log, apps.executors);
    apps.attach(started.node);
    return started;
  };
  let running = await start();
  const agents = new Map<string, Agent>();
  const agentFor = (as: string): Agent => {
    let agent = agents.get(as);
    if (!agent) {
      const id = as === "none" ? undefined : identities[as as keyof typeof identities];
      agent = new Agent({
        connect: {
          ca: running.node.identity.serviceCertPem,
          ...(id ? { cert: id.certPem, key: id.privateKeyPem } : {}),
        },
      });
      agents.set(as, agent);
    }
    return agent;
  };
  const closeAgents = async () => {
    await Promise.all([...agents.values()].map((a) => a.close()));
    agents.clear();
  };
  const network: TestNetwork = {
    dir,
    nodeDir: join(dir, "node0"),
    get running() {
      return running;
    },
    serviceCertPem: running.node.identity.serviceCertPem,
    identities,
    async call(method, path, opts = {}) {
      const body =
        opts.rawBody !== undefined
          ? opts.rawBody
          : opts.body === undefined
            ? undefined
            : JSON.stringify(opts.body);
      const res = await request(`https://127.0.0.1:${running.port}${path}`, {
        method: method as "GET",
        dispatcher: agentFor(opts.as ?? "user"),
        headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...opts.headers },
        body: body as string | undefined,
      });
      const bytes = new Uint8Array(await res.body.arrayBuffer());
      const text = Buffer.from(bytes).toString("utf8");
      return {
        status: res.statusCode,
        headers: res.headers,
        text,
        bytes,
        json: () => JSON.parse(text),
        txid: res.headers["x-ms-ccf-transaction-id"] as string | undefined,
      };
    },
    async restart() {
      await closeAgents();
      await running.stop();
      running = await start();
    },
    async stop() {
      await closeAgents();
      await running.stop();
    },
    async cleanup() {
      await network.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return network;
}
