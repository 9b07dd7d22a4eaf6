import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { builtInApp } from "../../src/cli/apps.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import { freePort } from "./cli.ts";
import { type Identity, makeIdentity } from "./network.ts";

/** Several nodes of one service in this process, each with its own directory and ports. */
export class Cluster {
  readonly nodes: RunningNode[] = [];
  private agents = new Map<string, Agent>();

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
  startService(settings: Record<string, unknown> = {}): Promise<RunningNode> {
    return this.start("n0", {
      members: [{ cert: "member0_cert.pem" }],
      openAtNodes: 1,
      users: [{ cert: "user0_cert.pem" }],
      ...settings,
    });
  }

  /** Starts a node that joins the service through `target`. */
  join(name: string, target: RunningNode, settings: Record<string, unknown> = {}): Promise<RunningNode> {
    return this.start(name, {
      join: { target: `127.0.0.1:${target.port}`, serviceCertFile: "service_cert.pem" },
      ...settings,
    });
  }

  async start(name: string, { rpc, ...settings }: Record<string, unknown>): Promise<RunningNode> {
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
    const running = await runNode(config, realEnvironment, logger, builtInApp("logging"));
    this.nodes.push(running);
    return running;
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
    const res = await request(this.url(node, path), {
      method: method as "GET",
      dispatcher: this.agent(opts.as ?? "user"),
      headers: {
        ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
  }

  /** Polls until `check` holds, or fails after `timeoutMs`. */
  async until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting until ${what}`);
  }

  primary(): RunningNode | undefined {
    return this.nodes.find((n) => n.node.isPrimary);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
    for (const node of [...this.nodes].reverse()) await node.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
