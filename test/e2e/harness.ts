/**
 * Real Coco networks for end-to-end tests: a `coco sandbox` of node processes on 127.0.0.1, signals
 * to kill, pause and resume them, restarts from their config files, and an HTTPS client that pins
 * the service certificate. Every process started here is killed by `cleanup()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certFingerprint } from "../../src/crypto/index.ts";
import { auditLedger } from "../../src/node/index.ts";
import { freePort, MAIN, reservePorts } from "../helpers/cli.ts";
import { NetworkClients } from "./clients.ts";
import { alive, childrenOf, live, signal, tail } from "./processes.ts";
import type { CliResult, Credentials, GovCliOptions, NetNode } from "./types.ts";
import { budget, SandboxExited, waitUntil } from "./waits.ts";

export { GOV_API } from "./clients.ts";
export { type LedgerLine, ledgerPrefix } from "./ledger-prefix.ts";
export type * from "./types.ts";
export { budget, connectionRefused, sleep, waitUntil } from "./waits.ts";

/** The TypeScript loader as a URL, so node processes start from any working directory. */
const TSX = import.meta.resolve("tsx");
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

export class Network extends NetworkClients {
  /** Node processes this test started itself (restarts, joiners), by pid. */
  private readonly restarted = new Map<number, ChildProcess>();
  private readonly logs: string[];
  private restarts = 0;
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
    readonly dir: string,
    private readonly sandbox: ChildProcess,
    readonly nodes: NetNode[],
    /** Node processes that may be running, so cleanup reaches them even if the sandbox died. */
    private readonly pids: Set<number>,
  ) {
    super();
    // The sandbox writes each node's log to <dir>/<node>/node.log.
    this.logs = [join(dir, "sandbox.log"), ...nodes.map((n) => join(dir, n.name, "node.log"))];
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
    const dir = mkdtempSync(join(tmpdir(), "coco-e2e-"));
    const port = await reservePorts(nodes * 2 + 1);
    const consoleArgs = opts.console ? ["--console-port", String(port + nodes * 2)] : ["--no-console"];
    const logPath = join(dir, "sandbox.log");
    const fd = openSync(logPath, "a");
    const sandbox = spawn(
      process.execPath,
      // The tests kill and restart nodes themselves: the sandbox must not restart them too.
      [
        "--import",
        TSX,
        MAIN,
        "sandbox",
        "--dir",
        dir,
        "--nodes",
        String(nodes),
        "--port",
        String(port),
        "--no-restart",
        ...consoleArgs,
      ],
      { cwd: dir, stdio: ["ignore", fd, fd] },
    );
    closeSync(fd);
    if (sandbox.pid !== undefined) live.add(sandbox.pid);
    let exited: number | null | undefined;
    sandbox.once("exit", (code) => {
      exited = code;
    });
    try {
      await waitUntil("the sandbox to open", opts.readyTimeoutMs ?? READY_TIMEOUT_MS, () => {
        if (readFileSync(logPath, "utf8").includes("Ctrl-C stops the network")) return true;
        if (exited !== undefined) throw new SandboxExited(exited);
        return false;
      });
    } catch (e) {
      for (const pid of [...childrenOf(sandbox.pid ?? -1), sandbox.pid ?? -1]) signal(pid, "SIGKILL");
      throw new Error(`${(e as Error).message}\n${tail(logPath)}`);
    }
    const file = JSON.parse(readFileSync(join(dir, "network.json"), "utf8")) as {
      nodes: Array<{ id: string; rpc_address: string; pid: number; ledger_dir: string; config: string }>;
    };
    const list = file.nodes.map((n, i) => ({
      name: `node${i}`,
      id: n.id,
      rpc: n.rpc_address,
      config: n.config,
      ledgerDir: n.ledger_dir,
      pid: n.pid,
    }));
    for (const node of list) live.add(node.pid);
    return new Network(dir, sandbox, list, new Set(list.map((n) => n.pid)));
  }

  byId(id: string): NetNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id} in this network`);
    return node;
  }

  isRunning(node: NetNode): boolean {
    return alive(node.pid);
  }

  /** kill -9, and waits until the process is gone (its ports free again). */
  async kill(node: NetNode): Promise<void> {
    signal(node.pid, "SIGKILL");
    await waitUntil(`${node.name} (pid ${node.pid}) to die`, 5_000, () => !alive(node.pid), 20);
    this.forget(node.pid);
  }

  pause(node: NetNode): void {
    signal(node.pid, "SIGSTOP");
  }

  resume(node: NetNode): void {
    signal(node.pid, "SIGCONT");
  }

  /** Starts a stopped node again from its config file (`coco start --config`). */
  async restart(node: NetNode): Promise<void> {
    if (alive(node.pid)) throw new Error(`${node.name} is still running (pid ${node.pid})`);
    const child = this.spawnNode(node, join(this.dir, `${node.name}.restart${++this.restarts}.log`));
    await waitUntil(`${node.name} to serve again`, 30_000, async () => {
      if (child.exitCode !== null) throw new Error(`${node.name} exited (${child.exitCode}) on restart`);
      return (await this.call(node, "GET", "/node/commit", { timeoutMs: 1_000 })).status === 200;
    });
  }

  /**
   * Starts a new node process that joins the service through `via`: writes `<name>.config.json`
   * next to the sandbox's (fixed RPC and node-to-node ports, a `join` section) and runs
   * `coco start --config` on it. Resolves once the primary records the joiner (as `Pending` while
   * the service is open), with its id. It is not in `nodes` until `joined()` says it serves.
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
      join: { target: via.rpc, serviceCertFile: "service_cert.pem", timeoutMs },
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
    const child = this.restarted.get(node.pid);
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

  /** Stops one node gracefully (SIGTERM) and waits until its process is gone. */
  async stop(node: NetNode): Promise<void> {
    signal(node.pid, "SIGCONT");
    signal(node.pid, "SIGTERM");
    await waitUntil(
      `${node.name} (pid ${node.pid}) to stop on SIGTERM`,
      STOP_TIMEOUT_MS,
      () => !alive(node.pid),
      20,
    );
    this.forget(node.pid);
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

  /**
   * Runs `coco <args>` in the network's directory to completion (killed after `timeoutMs`). The
   * process is tracked for cleanup while it runs.
   */
  cli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
    const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
      cwd: this.dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const pid = child.pid;
    if (pid !== undefined) {
      this.pids.add(pid);
      live.add(pid);
    }
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), budget(timeoutMs));
    return new Promise((resolve, reject) => {
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once("close", (status) => {
        clearTimeout(timer);
        if (pid !== undefined) this.forget(pid);
        resolve({ status, stdout, stderr });
      });
    });
  }

  /**
   * `coco gov <args>` against `opts.node` (the first node by default), pinning the current service
   * certificate and signing as `opts.as` (member0 by default).
   */
  govCli(args: string[], opts: GovCliOptions = {}): Promise<CliResult> {
    const node = opts.node ?? this.nodes[0];
    if (!node) throw new Error("no node to send governance requests to");
    const as = opts.as ?? "member0";
    return this.cli(
      [
        "gov",
        ...args,
        "--url",
        `https://${node.rpc}`,
        "--service-cert",
        this.serviceCertFile,
        "--cert",
        `${as}_cert.pem`,
        "--key",
        `${as}_privk.pem`,
      ],
      opts.timeoutMs,
    );
  }

  /** Runs `coco start --config <node.config>` (or `coco recover`) with its output in `logPath`; tracked for cleanup. */
  private spawnNode(node: NetNode, logPath: string, command: "start" | "recover" = "start"): ChildProcess {
    this.logs.push(logPath);
    const fd = openSync(logPath, "a");
    const child = spawn(process.execPath, ["--import", TSX, MAIN, command, "--config", node.config], {
      cwd: this.dir,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${node.name}`);
    const pid = child.pid;
    this.restarted.set(pid, child);
    this.pids.add(pid);
    live.add(pid);
    child.once("exit", () => this.forget(pid));
    node.pid = pid;
    return child;
  }

  /**
   * Stops every node gracefully (SIGTERM), so their ledgers can be read at rest. Client
   * connections are closed first: a node waits for open client connections as it stops.
   */
  async stopNodes(): Promise<void> {
    await this.closeAgents();
    for (const pid of this.pids) signal(pid, "SIGCONT");
    for (const node of this.nodes) signal(node.pid, "SIGTERM");
    const running = () => this.nodes.filter((n) => alive(n.pid)).map((n) => n.name);
    await waitUntil("the nodes to stop on SIGTERM", STOP_TIMEOUT_MS, () => running().length === 0, 50).catch(
      (e) => {
        throw new Error(`${(e as Error).message}: ${running().join(", ")} still running`);
      },
    );
    for (const node of this.nodes) this.forget(node.pid);
  }

  /** A process known to be gone: never signal its pid again (it may be reused). */
  private forget(pid: number): void {
    this.pids.delete(pid);
    live.delete(pid);
  }

  /** Kills everything this network started, closes clients, and removes the directory. */
  async cleanup(keep = false): Promise<void> {
    await this.closeAgents();
    const sandboxPid = this.sandbox.pid ?? -1;
    const pids = () => [...new Set([...this.pids, ...childrenOf(sandboxPid)])];
    for (const pid of pids()) signal(pid, "SIGCONT");
    // Politely first: the sandbox stops its own nodes on Ctrl-C; restarted nodes stop on SIGTERM.
    this.sandbox.kill("SIGINT");
    for (const child of this.restarted.values()) if (child.exitCode === null) child.kill("SIGTERM");
    await waitUntil(
      "the network to stop",
      STOP_TIMEOUT_MS,
      () => ![...pids(), sandboxPid].some(alive),
      50,
    ).catch(() => undefined);
    for (const pid of [...pids(), sandboxPid]) {
      signal(pid, "SIGKILL");
      live.delete(pid);
    }
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }

  /** The end of every log, for a failure message. */
  diagnostics(lines = 40): string {
    return this.logs.map((path) => tail(path, lines)).join("\n");
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
