/**
 * Process control for e2e networks: signals to kill, pause, resume and stop node processes,
 * restarts from their config files, `coco` CLI runs, and the clean-up that reaches every process
 * a network started (harness.ts builds the Network on this).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { MAIN } from "../helpers/cli.ts";
import { NetworkClients } from "./clients.ts";
import { alive, childrenOf, live, signal, tail } from "./processes.ts";
import { TSX } from "./sandbox-start.ts";
import type { CliResult, GovCliOptions, NetNode } from "./types.ts";
import { budget, waitUntil } from "./waits.ts";

const STOP_TIMEOUT_MS = 10_000;

export abstract class NetworkProcesses extends NetworkClients {
  /** Node processes this test started itself (restarts, joiners), by pid. */
  private readonly restarted = new Map<number, ChildProcess>();
  /** Every log a failure message shows the end of. */
  protected readonly logs: string[];
  private restarts = 0;
  /** The service certificate's file, relative to `dir`, that CLI calls pin. */
  abstract serviceCertFile: string;

  protected constructor(
    readonly dir: string,
    private readonly sandbox: ChildProcess,
    /** Node processes that may be running, so cleanup reaches them even if the sandbox died. */
    private readonly pids: Set<number>,
    nodeNames: string[],
  ) {
    super();
    // The sandbox writes each node's log to <dir>/<node>/node.log.
    this.logs = [join(dir, "sandbox.log"), ...nodeNames.map((name) => join(dir, name, "node.log"))];
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

  /**
   * Starts a stopped node again from its config file (`coco start --config`) and waits until it
   * serves. A node that exits first fails this at once, with its exit and the end of its log.
   */
  async restart(node: NetNode): Promise<void> {
    if (alive(node.pid)) throw new Error(`${node.name} is still running (pid ${node.pid})`);
    const log = join(this.dir, `${node.name}.restart${++this.restarts}.log`);
    const child = this.spawnNode(node, log);
    // waitUntil keeps polling through a probe's throw, so a node that died ends the wait by
    // returning, and the reason is thrown after it.
    let died = false;
    await waitUntil(`${node.name} to serve again`, 30_000, async () => {
      died = child.exitCode !== null || child.signalCode !== null;
      if (died) return true;
      return (await this.call(node, "GET", "/node/commit", { timeoutMs: 1_000 })).status === 200;
    });
    if (died) {
      const how = child.signalCode ?? `code ${child.exitCode}`;
      throw new Error(`${node.name} exited (${how}) on restart; the end of its log:\n${tail(log)}`);
    }
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
  protected spawnNode(node: NetNode, logPath: string, command: "start" | "recover" = "start"): ChildProcess {
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

  /** The process this test started for a node's current pid (a restart or joiner), if any. */
  protected childOf(pid: number): ChildProcess | undefined {
    return this.restarted.get(pid);
  }

  /** A process known to be gone: never signal its pid again (it may be reused). */
  protected forget(pid: number): void {
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
