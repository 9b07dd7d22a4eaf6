/**
 * A Coco network of real `coco start` processes, each in its own network namespace (hosts.ts)
 * with its data directory on its own small tmpfs (so one node's disk can be filled), its wall
 * clock offset through a file (`COCO_DEV_CLOCK_FILE`, src/node/env.ts), and optionally every
 * node-to-node link through a delaying relay (relay.ts). Node 0 starts the service and opens it
 * once all nodes are trusted (`openAtNodes`, joiners trusted while Opening: a test setting).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { createIdentityCertificate } from "../../src/crypto/index.ts";
import { budget, waitUntil } from "../e2e/waits.ts";
import { MAIN } from "../helpers/cli.ts";
import { type Host, Hosts } from "./hosts.ts";
import { type LinkSettings, Relay } from "./relay.ts";

const TSX = import.meta.resolve("tsx");
const RPC_PORT = 8000;
const NODE_PORT = 8001;
const TMPFS_SIZE = "128m";

// Waits and request deadlines are an idle machine's figures stretched by the load, as in the e2e
// tests (docs/testing.md, "Flaky under load"); the nemesis's own fault timings are not.
export { sleep, waitUntil } from "../e2e/waits.ts";

export interface NsNode {
  name: string;
  index: number;
  host: Host;
  rpc: string;
  dir: string;
  ledgerDir: string;
  config: string;
  clockFile: string;
  child: ChildProcess | undefined;
  /** Set while SIGSTOPped. */
  paused: boolean;
}

export interface Reply {
  status: number;
  text: string;
  errorCode: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are loosely typed JSON
  json<T = any>(): T;
}

export interface ClusterOptions {
  nodes: number;
  /** Every node-to-node link through a relay with these settings. */
  link?: Partial<LinkSettings>;
  /** Consensus timing for every node (defaults: Coco's). */
  consensus?: { tickMs?: number; electionTicksMin?: number; electionTicksMax?: number };
}

export class NsCluster {
  readonly nodes: NsNode[];
  readonly relays: Relay[] = [];
  private readonly agents = new Map<string, Agent>();
  private serviceCert = "";
  private restarts = 0;

  private constructor(
    readonly dir: string,
    readonly hosts: Hosts,
    private readonly opts: ClusterOptions,
  ) {
    this.nodes = hosts.hosts.map((host, i) => {
      const nodeDir = join(dir, `node${i}`);
      return {
        name: `node${i}`,
        index: i,
        host,
        rpc: `${host.address}:${RPC_PORT}`,
        dir: nodeDir,
        ledgerDir: join(nodeDir, "ledger"),
        config: join(dir, `node${i}.config.json`),
        clockFile: join(dir, `node${i}.clock`),
        child: undefined,
        paused: false,
      };
    });
  }

  /** Makes the hosts, starts every node and waits until all serve the app. */
  static async start(opts: ClusterOptions): Promise<NsCluster> {
    const dir = mkdtempSync(join(tmpdir(), "coco-nemesis-"));
    const hosts = Hosts.create(opts.nodes);
    const cluster = new NsCluster(dir, hosts, opts);
    try {
      await cluster.boot();
    } catch (e) {
      console.error(cluster.diagnostics());
      await cluster.cleanup();
      throw e;
    }
    return cluster;
  }

  private async boot(): Promise<void> {
    for (const name of ["member0", "user0"]) {
      const id = await createIdentityCertificate({
        name,
        now: new Date(),
        serial: new Uint8Array(16).fill(1),
      });
      writeFileSync(join(this.dir, `${name}_cert.pem`), id.certPem);
      writeFileSync(join(this.dir, `${name}_privk.pem`), id.privateKeyPem, { mode: 0o600 });
    }
    if (this.opts.link) await this.startRelays(this.opts.link);
    for (const node of this.nodes) {
      mkdirSync(node.dir);
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_SIZE},mode=0700`, "tmpfs", node.dir]);
      writeFileSync(node.clockFile, "0\n");
      const first = node.index === 0;
      const settings = {
        dir: node.name,
        rpc: { address: node.rpc },
        nodeAddress: `${node.host.address}:${NODE_PORT}`,
        serviceCertFile: "service_cert.pem",
        ...(first
          ? {
              members: [{ cert: "member0_cert.pem" }],
              users: [{ cert: "user0_cert.pem" }],
              openAtNodes: this.nodes.length,
              attestation: { virtual: { trustJoinersWhileOpening: true } },
            }
          : { join: { target: this.nodes[0]!.rpc, serviceCertFile: "service_cert.pem" } }),
        ...(this.opts.consensus ? { consensus: this.opts.consensus } : {}),
        app: "logging",
        log: { level: "info", format: "json" },
      };
      writeFileSync(node.config, `${JSON.stringify(settings, null, 2)}\n`);
    }
    this.spawn(this.nodes[0]!);
    const certPath = join(this.dir, "service_cert.pem");
    await waitUntil("node0 to write the service certificate", 60_000, () => {
      this.exitedCheck(this.nodes[0]!);
      return readFileSync(certPath, "utf8").includes("END CERTIFICATE");
    });
    this.serviceCert = readFileSync(certPath, "utf8");
    for (const node of this.nodes.slice(1)) this.spawn(node);
    for (const node of this.nodes) {
      await waitUntil(`${node.name} to serve the app`, 90_000, async () => {
        this.exitedCheck(node);
        return (await this.call(node, "GET", "/node/ready/app", { timeoutMs: 2_000 })).status === 204;
      });
    }
  }

  private exitedCheck(node: NsNode): void {
    const child = node.child;
    if (child && child.exitCode !== null) throw new Error(`${node.name} exited (${child.exitCode})`);
  }

  /** One relay per node, in the test's namespace; every other node reaches it through the relay. */
  private async startRelays(link: Partial<LinkSettings>): Promise<void> {
    for (const target of this.nodes) {
      const relay = new Relay({ host: target.host.address, port: NODE_PORT });
      relay.link = { ...relay.link, ...link };
      const port = await relay.listen(this.hosts.gateway);
      this.relays.push(relay);
      for (const from of this.nodes) {
        if (from !== target)
          this.hosts.redirect(from.index, target.index, NODE_PORT, { host: this.hosts.gateway, port });
      }
    }
  }

  setLink(link: Partial<LinkSettings>): void {
    for (const relay of this.relays) relay.link = { ...relay.link, ...link };
  }

  private spawn(node: NsNode): void {
    const log = openSync(join(this.dir, `${node.name}.log`), "a");
    const argv = this.hosts.wrap(node.host, [
      process.execPath,
      "--import",
      TSX,
      MAIN,
      "start",
      "--config",
      node.config,
    ]);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.dir,
      stdio: ["ignore", log, log],
      env: { ...process.env, COCO_DEV_CLOCK_FILE: node.clockFile },
    });
    closeSync(log);
    node.child = child;
    node.paused = false;
  }

  running(node: NsNode): boolean {
    return node.child !== undefined && node.child.exitCode === null && node.child.signalCode === null;
  }

  async kill(node: NsNode): Promise<void> {
    const child = node.child;
    if (!child || !this.running(node)) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    node.paused = false;
  }

  pause(node: NsNode): void {
    if (!this.running(node)) return;
    node.child!.kill("SIGSTOP");
    node.paused = true;
  }

  resume(node: NsNode): void {
    if (!this.running(node)) return;
    node.child!.kill("SIGCONT");
    node.paused = false;
  }

  /** Starts a node that is not running again from its data directory (`coco start`). */
  async restart(node: NsNode): Promise<void> {
    if (this.running(node)) return;
    this.restarts++;
    this.spawn(node);
  }

  /** Shifts a node's wall clock by `offsetMs` from now on (0: back to the system clock). */
  setClock(node: NsNode, offsetMs: number): void {
    writeFileSync(node.clockFile, `${offsetMs}\n`);
  }

  /** Fills a node's tmpfs to the last byte with a ballast file; `freeDisk` removes it. */
  fillDisk(node: NsNode): void {
    const fs = statfsSync(node.dir);
    const free = fs.bavail * fs.bsize;
    const ballast = join(node.dir, "ballast");
    const fd = openSync(ballast, "w");
    const chunk = Buffer.alloc(1024 * 1024);
    try {
      for (let left = free; left > 0; left -= chunk.length) {
        try {
          writeFileSync(fd, left >= chunk.length ? chunk : chunk.subarray(0, left));
        } catch {
          break;
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  freeDisk(node: NsNode): void {
    rmSync(join(node.dir, "ballast"), { force: true });
  }

  private agentFor(rpc: string): Agent {
    let agent = this.agents.get(rpc);
    if (!agent) {
      agent = new Agent({
        connect: {
          ca: this.serviceCert,
          cert: readFileSync(join(this.dir, "user0_cert.pem"), "utf8"),
          key: readFileSync(join(this.dir, "user0_privk.pem"), "utf8"),
          // Each request has its own deadline (`call`); the connection's must not be shorter (a
          // fixed 2 s TLS connect failed e2e requests at load 28).
          timeout: budget(10_000),
        },
        keepAliveTimeout: 2_000,
        connections: 64,
      });
      this.agents.set(rpc, agent);
    }
    return agent;
  }

  async call(
    node: NsNode,
    method: string,
    path: string,
    opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Reply> {
    const res = await request(`https://${node.rpc}${path}`, {
      method: method as "GET",
      dispatcher: this.agentFor(node.rpc),
      headers: {
        ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(budget(opts.timeoutMs ?? 5_000)),
    });
    const text = await res.body.text();
    let errorCode: string | undefined;
    try {
      errorCode = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      // not JSON
    }
    return { status: res.statusCode, text, errorCode, json: () => JSON.parse(text) };
  }

  async consensus(
    node: NsNode,
  ): Promise<{ role: string; view: number; commitSeqno: number; lastSeqno: number }> {
    const reply = await this.call(node, "GET", "/node/consensus", { timeoutMs: 1_000 });
    if (reply.status !== 200) throw new Error(`${node.name} /node/consensus answered ${reply.status}`);
    return reply.json();
  }

  /** The node claiming primary in the highest view among those answering, or undefined. */
  async findPrimary(among: NsNode[] = this.nodes): Promise<{ node: NsNode; view: number } | undefined> {
    const answers = await Promise.all(
      among.map((node) =>
        this.consensus(node).then(
          (s) => ({ node, s }),
          () => undefined,
        ),
      ),
    );
    let found: { node: NsNode; view: number } | undefined;
    for (const a of answers)
      if (a?.s.role === "primary" && (!found || a.s.view > found.view))
        found = { node: a.node, view: a.s.view };
    return found;
  }

  serviceCertPem(): string {
    return this.serviceCert;
  }

  /** Stops every node with SIGTERM (after SIGCONT), so ledgers can be read at rest. */
  async stopNodes(): Promise<void> {
    await this.closeAgents();
    await Promise.all(
      this.nodes.map(async (node) => {
        const child = node.child;
        if (!child || !this.running(node)) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGCONT");
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), budget(15_000));
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private async closeAgents(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.destroy()));
  }

  /** The last line of a node's log that speaks of an error (why it exited), shortened. */
  lastError(node: NsNode): string | undefined {
    try {
      const lines = readFileSync(join(this.dir, `${node.name}.log`), "utf8")
        .trim()
        .split("\n");
      const line = lines.reverse().find((l) => /error|fatal|ENOSPC/i.test(l));
      return line?.slice(0, 240);
    } catch {
      return undefined;
    }
  }

  diagnostics(lines = 30): string {
    return this.nodes
      .map((n) => {
        try {
          const text = readFileSync(join(this.dir, `${n.name}.log`), "utf8").split("\n");
          return `--- ${n.name} (last ${lines} lines)\n${text.slice(-lines).join("\n")}`;
        } catch {
          return `--- ${n.name}: no log`;
        }
      })
      .join("\n");
  }

  /** Kills every node, closes relays, unmounts the tmpfs, removes the hosts and (unless kept) the directory. */
  async cleanup(keep = false): Promise<void> {
    await this.closeAgents();
    for (const node of this.nodes) {
      node.child?.kill("SIGCONT");
      await this.kill(node);
    }
    await Promise.all(this.relays.map((r) => r.close()));
    for (const node of this.nodes) {
      // The tmpfs goes with the unmount: a kept run keeps a copy of each node's directory.
      if (keep) cpSync(node.dir, `${node.dir}.kept`, { recursive: true });
      try {
        execFileSync("umount", [node.dir], { stdio: "ignore" });
      } catch {
        // not mounted
      }
    }
    this.hosts.remove();
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }

  get restartCount(): number {
    return this.restarts;
  }
}
