/**
 * Real Coco networks for end-to-end tests: a `coco sandbox` of node processes on 127.0.0.1
 * (sandbox-start.ts), process control (signals, restarts, CLI runs, clean-up: process-control.ts),
 * HTTPS clients that pin the service certificate (clients.ts), waits sized from the load
 * (waits.ts); and here the network's membership: joiners, disaster recovery, the ledger to
 * recover from. Every process started here is killed by `cleanup()`.
 */
import type { ChildProcess } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { certFingerprint } from "../../src/crypto/index.ts";
import { auditLedger } from "../../src/node/index.ts";
import { freePort } from "../helpers/cli.ts";
import { NetworkProcesses } from "./process-control.ts";
import { alive, tail } from "./processes.ts";
import { startSandbox } from "./sandbox-start.ts";
import type { Credentials, NetNode } from "./types.ts";
import { budget, waitUntil } from "./waits.ts";

export { GOV_API } from "./clients.ts";
export { type LedgerLine, ledgerPrefix } from "./ledger-prefix.ts";
export type * from "./types.ts";
export { budget, connectionRefused, sleep, waitUntil } from "./waits.ts";

export class Network extends NetworkProcesses {
  protected credentials: Credentials;
  protected readonly memberCredentials: Credentials;
  /** The service certificate, which clients pin (a recovered service's, after `recover()`). */
  serviceCertPem: string;
  /** Its file, relative to `dir`. */
  serviceCertFile = "service_cert.pem";
  /** The lost service's certificate, once `recover()` started a new service from its ledger. */
  previousServiceCertPem: string | undefined;
  /** member0's id (the sandbox made it Active when it opened the service). */
  readonly memberId: string;

  private constructor(
    dir: string,
    sandbox: ChildProcess,
    readonly nodes: NetNode[],
  ) {
    super(
      dir,
      sandbox,
      new Set(nodes.map((n) => n.pid)),
      nodes.map((n) => n.name),
    );
    this.serviceCertPem = readFileSync(join(dir, "service_cert.pem"), "utf8");
    this.credentials = {
      ca: this.serviceCertPem,
      cert: readFileSync(join(dir, "user0_cert.pem"), "utf8"),
      key: readFileSync(join(dir, "user0_privk.pem"), "utf8"),
    };
    this.memberCredentials = {
      ca: this.serviceCertPem,
      cert: readFileSync(join(dir, "member0_cert.pem"), "utf8"),
      key: readFileSync(join(dir, "member0_privk.pem"), "utf8"),
    };
    this.memberId = certFingerprint(this.memberCredentials.cert);
  }

  /**
   * Starts `coco sandbox --nodes <n>` in a new directory and waits until it is open; with
   * `console`, its web console too (on the port after the nodes'), else `--no-console`.
   */
  static async start(nodes = 3, opts: { console?: boolean; readyTimeoutMs?: number } = {}): Promise<Network> {
    const started = await startSandbox(nodes, opts);
    return new Network(started.dir, started.sandbox, started.nodes);
  }

  byId(id: string): NetNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id} in this network`);
    return node;
  }

  /**
   * Starts a new node process that joins the service through `via`: writes `<name>.config.json`
   * next to the sandbox's (fixed RPC and node-to-node ports, a `join` section) and runs
   * `coco start --config` on it. Resolves once the primary records the joiner (as `Pending` while
   * the service is open), with its id. It is not in `nodes` until `joined()` says it serves.
   * The joiner itself gives up (`join.timeoutMs`) only after the test's waits for it would have:
   * being recorded, the members' vote and `joined()`, each an idle `timeoutMs` stretched by the
   * load (a fixed 30 s in its config could run out first at load 20).
   */
  async startJoiner(name: string, via: NetNode, timeoutMs = 30_000): Promise<NetNode> {
    if (this.nodes.some((n) => n.name === name)) throw new Error(`there is already a node ${name}`);
    const rpc = `127.0.0.1:${await freePort()}`;
    const nodePort = await freePort();
    const config = join(this.dir, `${name}.config.json`);
    const settings = {
      dir: name,
      rpc: { address: rpc },
      nodeAddress: `127.0.0.1:${nodePort}`,
      serviceCertFile: "service_cert.pem",
      join: { target: via.rpc, serviceCertFile: "service_cert.pem", timeoutMs: budget(3 * timeoutMs) },
      app: "logging",
      log: { level: "info", format: "pretty" },
    };
    writeFileSync(config, `${JSON.stringify(settings, null, 2)}\n`);
    const node: NetNode = { name, id: "", rpc, config, ledgerDir: join(this.dir, name, "ledger"), pid: -1 };
    const logPath = join(this.dir, `${name}.log`);
    const child = this.spawnNode(node, logPath);
    await waitUntil(`the primary to record ${name} (${rpc})`, timeoutMs, async () => {
      if (child.exitCode !== null) return true;
      const primary = await this.primary(2_000);
      const reply = await this.call(primary, "GET", "/node/network/nodes", { timeoutMs: 2_000 });
      const listed = reply.json<{ nodes: Array<{ node_id: string; rpc_address: string }> }>().nodes;
      node.id = listed.find((n) => n.rpc_address === rpc)?.node_id ?? "";
      return node.id !== "";
    });
    // Fail at once, with the reason from its log (e.g. a refused join), rather than at the time-out.
    if (child.exitCode !== null)
      throw new Error(`${name} exited (${child.exitCode}) while joining\n${tail(logPath, 10)}`);
    return node;
  }

  /**
   * Waits until a joiner started by `startJoiner` is ready for clients (`/node/ready/app`: it was
   * trusted, received the service's secrets, and has replicated the open service's state), then
   * counts it among `nodes`.
   */
  async joined(node: NetNode, timeoutMs = 30_000): Promise<void> {
    const child = this.childOf(node.pid);
    const exited = () => child !== undefined && child.exitCode !== null;
    await waitUntil(`${node.name} to join and serve`, timeoutMs, async () => {
      if (exited()) return true;
      return (await this.call(node, "GET", "/node/ready/app", { timeoutMs: 1_000 })).status === 204;
    });
    if (exited()) throw new Error(`${node.name} exited (${child!.exitCode}) before it was ready`);
    const state = (await this.call(node, "GET", "/node/state")).json<{ node_id: string }>();
    if (state.node_id !== node.id) throw new Error(`${node.name} serves as ${state.node_id}, not ${node.id}`);
    if (!this.nodes.includes(node)) this.nodes.push(node);
  }

  /**
   * No longer counts `node` among `nodes` (e.g. a retired node): workloads stop choosing it, and
   * `primary()` and the checks leave it out. Its process is left alone.
   */
  drop(node: NetNode): void {
    const index = this.nodes.indexOf(node);
    if (index >= 0) this.nodes.splice(index, 1);
  }

  /**
   * Of the stopped nodes' ledgers, the one to recover from, as an operator picks it with
   * `coco ledger audit`: the highest view, then seqno, of the last signature. By Raft's rule that
   * ledger holds every committed transaction; a backup that lagged, a deposed primary with a
   * longer but stale tail, or even the primary (backups may commit before its own fsync) may not.
   */
  async mostAdvancedLedger(among: NetNode[] = this.nodes): Promise<NetNode> {
    let best: { node: NetNode; view: number; seqno: number } | undefined;
    for (const node of among) {
      const report = await auditLedger(node.ledgerDir, this.serviceCertPem);
      if (!report.ok) throw new Error(`${node.name}'s ledger does not audit: ${report.failure?.message}`);
      const last = report.lastSignature;
      if (!last) continue;
      if (!best || last.view > best.view || (last.view === best.view && last.seqno > best.seqno)) {
        best = { node, ...last };
      }
    }
    if (!best) throw new Error("no ledger holds a signature");
    return best.node;
  }

  /**
   * Disaster recovery, as docs/recovery.md tells an operator: with every node of the service down,
   * copies `from`'s ledger directory into a new node directory `<name>/ledger`, writes
   * `<name>.config.json` (a `recover` section naming the lost service's certificate, the new one
   * written to `recovered_service_cert.pem`) and runs `coco recover --config` on it. Resolves once
   * the node serves; from then on clients pin the new service certificate (the old one stays in
   * `previousServiceCertPem`) and the recovered node is the network's only node.
   */
  async recover(from: NetNode, name = "r0", timeoutMs = 30_000): Promise<NetNode> {
    const running = this.nodes.filter((n) => alive(n.pid)).map((n) => n.name);
    if (running.length > 0)
      throw new Error(`recover() needs every node down; ${running.join(", ")} still run`);
    if (this.nodes.some((n) => n.name === name)) throw new Error(`there is already a node ${name}`);
    cpSync(from.ledgerDir, join(this.dir, name, "ledger"), { recursive: true });
    const rpc = `127.0.0.1:${await freePort()}`;
    const nodePort = await freePort();
    const certFile = "recovered_service_cert.pem";
    const config = join(this.dir, `${name}.config.json`);
    const settings = {
      dir: name,
      rpc: { address: rpc },
      nodeAddress: `127.0.0.1:${nodePort}`,
      serviceCertFile: certFile,
      recover: { previousServiceCertFile: this.serviceCertFile },
      app: "logging",
      log: { level: "info", format: "pretty" },
    };
    writeFileSync(config, `${JSON.stringify(settings, null, 2)}\n`);
    const node: NetNode = { name, id: "", rpc, config, ledgerDir: join(this.dir, name, "ledger"), pid: -1 };
    const logPath = join(this.dir, `${name}.log`);
    const child = this.spawnNode(node, logPath, "recover");
    const certPath = join(this.dir, certFile);
    let pinned = false;
    await waitUntil(`${name} to start the recovered service (${rpc})`, timeoutMs, async () => {
      if (child.exitCode !== null) return true;
      // Written whole before it is pinned: a half-written file would pin nothing useful.
      if (!existsSync(certPath) || !readFileSync(certPath, "utf8").includes("-----END CERTIFICATE-----"))
        return false;
      // The first time the file is seen: pin it from now on.
      if (!pinned) {
        this.pin(readFileSync(certPath, "utf8"), certFile);
        pinned = true;
      }
      const reply = await this.call(node, "GET", "/node/state", { timeoutMs: 1_000 });
      node.id = reply.status === 200 ? reply.json<{ node_id: string }>().node_id : "";
      return node.id !== "";
    });
    if (child.exitCode !== null)
      throw new Error(`${name} exited (${child.exitCode}) while recovering\n${tail(logPath, 20)}`);
    this.nodes.splice(0, this.nodes.length, node);
    return node;
  }

  /** Clients pin `pem` (a new service's certificate) from now on; the old one is remembered. */
  private pin(pem: string, file: string): void {
    this.previousServiceCertPem = this.serviceCertPem;
    this.serviceCertPem = pem;
    this.serviceCertFile = file;
    this.credentials = { ...this.credentials, ca: pem };
    // Connections pinned to the old certificate are useless now.
    void this.closeAgents();
  }
}

/**
 * Runs `body` against a fresh network and always cleans up. On failure the logs' tails are
 * printed and the directory kept (its path printed) for a post-mortem.
 */
export async function withNetwork(nodes: number, body: (net: Network) => Promise<void>): Promise<void> {
  const net = await Network.start(nodes);
  let failed = true;
  try {
    await body(net);
    failed = false;
  } finally {
    if (failed) console.error(`e2e network kept in ${net.dir}\n${net.diagnostics()}`);
    await net.cleanup(failed);
  }
}
