import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import type { Executor } from "../../src/apps/index.ts";
import { appExecutors } from "../../src/cli/js-apps.ts";
import { sawtoothFor } from "../../src/cli/sawtooth.ts";
import type { GovClient } from "../../src/client/index.ts";
import type { ProposalView } from "../../src/gov/index.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import type { NodeSeams } from "../../src/node/run.ts";
import { budget } from "../e2e/waits.ts";
import { freePort } from "./cli.ts";
import { govClient, type Identity, makeIdentity, passProposal, validFrom } from "./network.ts";

/** Several nodes of one service in this process, each with its own directory and ports. */
export class Cluster {
  readonly nodes: RunningNode[] = [];
  private agents = new Map<string, Agent>();
  /** member0's governance clients, by the port of the node they talk to. */
  private govClients = new Map<number, GovClient>();
  private memberActive = false;
  /** Nodes still starting (joiners waiting to be trusted): see `track`. */
  private readonly starting = new Set<Promise<void>>();
  /** Executors every node started from now on serves before its configured app (a test's own). */
  readonly apps: Executor[] = [];

  private constructor(
    readonly dir: string,
    readonly user: Identity,
    readonly member: Identity,
  ) {}

  static async create(): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), "coco-cluster-"));
    const cluster = new Cluster(dir, await makeIdentity("user0"), await makeIdentity("member0"));
    writeFileSync(join(dir, "member0_cert.pem"), cluster.member.certPem);
    writeFileSync(join(dir, "user0_cert.pem"), cluster.user.certPem);
    return cluster;
  }

  /** Starts the first node of a new service. */
  startService(settings: Record<string, unknown> = {}, seams?: NodeSeams): Promise<RunningNode> {
    return this.start(
      "n0",
      {
        members: [{ cert: "member0_cert.pem" }],
        openAtNodes: 1,
        users: [{ cert: "user0_cert.pem" }],
        ...settings,
      },
      seams,
    );
  }

  /**
   * Starts a node that joins the service through `target`. While the service is still Opening,
   * member0 trusts the joiner by vote (`transition_node_to_trusted`) as soon as it is recorded
   * Pending, as a consortium setting up its service would; once the service is Open the joiner
   * waits, Pending, for the test to trust it (`trustNode`).
   */
  async join(
    name: string,
    target: RunningNode,
    settings: Record<string, unknown> = {},
    seams?: NodeSeams,
  ): Promise<RunningNode> {
    const nodeAddress = (settings.nodeAddress as string | undefined) ?? `127.0.0.1:${await freePort()}`;
    const starting = this.track(
      this.start(
        name,
        {
          // The joiner's own deadline (60 s by default) follows the load like the test's waits.
          join: {
            target: `127.0.0.1:${target.port}`,
            serviceCertFile: "service_cert.pem",
            timeoutMs: budget(60_000),
          },
          nodeAddress,
          ...settings,
        },
        seams,
      ),
    );
    let settled = false;
    const done = starting.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    const [running] = await Promise.all([
      starting,
      this.trustWhileOpening(target, nodeAddress, () => settled, done),
    ]);
    return running;
  }

  /**
   * Remembers a node starting (a joiner waits for the members' vote inside `runNode`, with no way
   * to cancel it): `stop` stops it once it is up, or waits for its join to fail, so no joiner of a
   * failed test outlives the test and rejects after it has ended.
   */
  private track(starting: Promise<RunningNode>): Promise<RunningNode> {
    const settled = starting.then(
      () => {},
      () => {},
    );
    this.starting.add(settled);
    void settled.then(() => this.starting.delete(settled));
    return starting;
  }

  /** member0 trusts the node recorded at `nodeAddress` if it is Pending while the service is Opening. */
  private async trustWhileOpening(
    target: RunningNode,
    nodeAddress: string,
    settled: () => boolean,
    done: Promise<void>,
  ): Promise<void> {
    // An idle machine's figure, stretched by the load like every wait (`until`).
    let deadline = Date.now() + budget(60_000);
    let lastError: unknown;
    while (!settled()) {
      if (Date.now() > deadline)
        throw new Error(`could not trust the joiner at ${nodeAddress}: ${String(lastError)}`);
      try {
        const via = this.primary() ?? target;
        const network = (await this.call(via, "GET", "/node/network")).json() as { service_status: string };
        if (network.service_status !== "Opening") return;
        const nodes = (await this.call(via, "GET", "/node/network/nodes")).json().nodes as Array<{
          node_id: string;
          status: string;
          node_address: string | null;
        }>;
        const joiner = nodes.find((n) => n.node_address === nodeAddress);
        // A trust seen here may not be committed: a view change can still roll it back, and the
        // joiner, answered only from settled records, would then wait Pending for a vote that no
        // longer exists. Keep watching until the join itself ends; the joiner's own deadline
        // bounds the wait once it is trusted.
        if (joiner?.status === "Trusted") deadline = Date.now() + budget(60_000);
        if (joiner?.status === "Pending") await this.trustNode(joiner.node_id);
      } catch (e) {
        // An election may roll a vote back, or a node may be starting: ask again.
        lastError = e;
      }
      await Promise.race([done, new Promise((r) => setTimeout(r, 100))]);
    }
  }

  /** Starts node `name` with `settings` over the defaults; `seams` stand in for hardware in-process. */
  async start(
    name: string,
    { rpc, ...settings }: Record<string, unknown>,
    seams?: NodeSeams,
  ): Promise<RunningNode> {
    const config = parseConfig(
      {
        dir: name,
        rpc: { address: `127.0.0.1:${await freePort()}`, ...(rpc as object | undefined) },
        nodeAddress: `127.0.0.1:${await freePort()}`,
        app: "logging",
        log: { level: "error" },
        ...settings,
      },
      this.dir,
    );
    const logger = createLogger({ level: process.env.COCO_TEST_LOG ?? "error", format: "json" });
    const apps = await appExecutors(config, realEnvironment, logger);
    const sawtooth = await sawtoothFor(config, logger);
    const running = await runNode(
      config,
      realEnvironment,
      logger,
      [...this.apps, ...apps.executors, ...sawtooth.executors],
      seams,
    );
    apps.attach(running.node);
    sawtooth.attach(running);
    this.nodes.push(running);
    return running;
  }

  /** Forgets the client connections (a recovered service has a new certificate to pin). */
  async resetAgents(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
    this.agents.clear();
  }

  agent(as: "user" | "member"): Agent {
    let agent = this.agents.get(as);
    if (!agent) {
      const id = as === "user" ? this.user : this.member;
      const ca = this.nodes[0]!.node.identity.serviceCertPem;
      agent = new Agent({ connect: { ca, cert: id.certPem, key: id.privateKeyPem } });
      this.agents.set(as, agent);
    }
    return agent;
  }

  url(node: RunningNode, path: string): string {
    return `https://127.0.0.1:${node.port}${path}`;
  }

  async call(
    node: RunningNode,
    method: string,
    path: string,
    opts: { body?: unknown; as?: "user" | "member"; headers?: Record<string, string> } = {},
  ) {
    const send = () =>
      request(this.url(node, path), {
        method: method as "GET",
        dispatcher: this.agent(opts.as ?? "user"),
        headers: {
          ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
          ...opts.headers,
        },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    // A kept-alive connection the node closes for idleness just as a request goes out on it
    // resets that request unread (a loaded machine stalls past the client's margin): an
    // idempotent request is sent again once, as HTTP clients do.
    const res = await send().catch((e: unknown) => {
      if (IDEMPOTENT.has(method) && connectionReset(e)) return send();
      throw e;
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  /** Polls until `check` holds, or fails after `timeoutMs` (an idle machine's figure) stretched by the load. */
  async until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
    const limit = budget(timeoutMs);
    const deadline = Date.now() + limit;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out after ${limit} ms waiting until ${what}\n${await this.describe()}`);
  }

  /**
   * One line a node, for a timeout's message: what /node/ready/app answers, its consensus
   * (role, view, primary, commit/last), the service status its store has, and its nodes table.
   */
  async describe(): Promise<string> {
    const lines = await Promise.all(
      this.nodes.map(async (running, i) => {
        const { node } = running;
        const asked = this.call(running, "GET", "/node/ready/app");
        const timeout = new Promise<never>((_, reject) => {
          setTimeout(() => reject(new Error("no answer in 5 s")), 5_000).unref();
        });
        const ready = await Promise.race([asked, timeout]).then(
          (r) => `${r.status}${r.status === 204 ? "" : ` ${errorCode(r.text)}`}`,
          (e: unknown) => `error ${(e as Error).message}`,
        );
        const c = node.consensusStatus;
        const raft = c
          ? `${c.role} v${c.view} primary=${c.leader?.slice(0, 8) ?? "-"} commit=${c.commitSeqno}/${c.lastSeqno}`
          : "no consensus";
        let service: string;
        try {
          service = node.serviceInfo().status;
        } catch (e) {
          service = `? (${(e as Error).message})`;
        }
        const table = node
          .nodes()
          .map(([id, info]) => `${id.slice(0, 8)}:${info.status}`)
          .join(",");
        return `  #${i} ${node.nodeId.slice(0, 8)} ready=${ready} ${raft} service=${service} nodes=[${table}]${node.failure ? ` failed: ${node.failure.message}` : ""}`;
      }),
    );
    return `nodes:\n${lines.join("\n")}`;
  }

  /** Waits until every node serves the app (the service is open everywhere). */
  async untilOpen(): Promise<void> {
    await this.until("the service is open everywhere", async () => {
      for (const node of this.nodes)
        if ((await this.call(node, "GET", "/node/ready/app")).status !== 204) return false;
      return true;
    });
  }

  /**
   * A governance client signing as member0, talking to `via` (by default the primary; a backup
   * redirects writes there). Member0 acknowledges the state on first use, once per service.
   */
  async gov(via: RunningNode | undefined = this.primary() ?? this.nodes[0]): Promise<GovClient> {
    if (!via) throw new Error("no node has been started");
    let gov = this.govClients.get(via.port);
    if (!gov) {
      gov = govClient(this.url(via, ""), this.nodes[0]!.node.identity.serviceCertPem, this.member);
      this.govClients.set(via.port, gov);
    }
    if (!this.memberActive) {
      await gov.activate();
      this.memberActive = true;
    }
    return gov;
  }

  /** member0 proposes `transition_node_to_trusted` for a pending node and votes for it. */
  async trustNode(nodeId: string, via?: RunningNode): Promise<ProposalView> {
    const args = { node_id: nodeId, valid_from: validFrom() };
    return passProposal(await this.gov(via), "transition_node_to_trusted", args);
  }

  /** member0 proposes `remove_node` and votes for it: the node is retired. */
  async retireNode(nodeId: string, via?: RunningNode): Promise<ProposalView> {
    return passProposal(await this.gov(via), "remove_node", { node_id: nodeId });
  }

  /** Waits until `via` lists a node as Pending (a joiner of an open service), and returns its id. */
  async pendingNode(via: RunningNode): Promise<string> {
    let pendingId: string | undefined;
    await this.until("a node is recorded as pending", async () => {
      const nodes = (await this.call(via, "GET", "/node/network/nodes")).json().nodes as Array<{
        node_id: string;
        status: string;
      }>;
      pendingId = nodes.find((n) => n.status === "Pending")?.node_id;
      return pendingId !== undefined;
    });
    return pendingId!;
  }

  primary(): RunningNode | undefined {
    return this.nodes.find((n) => n.node.isPrimary);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values(), ...this.govClients.values()].map((a) => a.close()));
    for (const node of [...this.nodes].reverse()) await node.stop();
    // A joiner still waiting has lost its service: its join fails by its own deadline.
    if (this.starting.size > 0) {
      await Promise.all(this.starting);
      for (const node of [...this.nodes].reverse()) await node.stop();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

/** A connection closed under a request before any answer (undici's or the socket's own code). */
function connectionReset(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "UND_ERR_SOCKET";
}

/** The `error.code` of an error answer, or its first characters. */
function errorCode(text: string): string {
  try {
    return String(JSON.parse(text).error.code);
  } catch {
    return text.slice(0, 60);
  }
}
