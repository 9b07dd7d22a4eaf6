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
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { certFingerprint } from "../../src/crypto/index.ts";
import { type GovMessageType, signGovRequest } from "../../src/gov/index.ts";
import { readLedgerDir } from "../../src/ledger/index.ts";
import { auditLedger } from "../../src/node/index.ts";
import { freePort, MAIN, reservePorts } from "../helpers/cli.ts";

/** The TypeScript loader as a URL, so node processes start from any working directory. */
const TSX = import.meta.resolve("tsx");
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** The governance API version every `/gov` request names. */
export const GOV_API = "api-version=2024-07-01";
/** How many 307s a governance write follows (a backup names the primary). */
const GOV_REDIRECTS = 3;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns true; throws after `timeoutMs` naming what it waited for. */
/** The sandbox process ended before it was open: no point in waiting any longer. */
class SandboxExited extends Error {
  constructor(code: number | null) {
    super(`the sandbox exited (${code}) before it was open`);
  }
}

export async function waitUntil(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (e) {
      if (e instanceof SandboxExited) throw e;
      lastError = e;
    }
    await sleep(intervalMs);
  }
  const cause = lastError ? ` (last error: ${(lastError as Error).message})` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
}

export interface NetNode {
  /** `node0`, `node1`, ...: the sandbox's name for it. */
  name: string;
  id: string;
  /** `127.0.0.1:<port>` */
  rpc: string;
  config: string;
  ledgerDir: string;
  /** The process serving this node now (changes on restart). */
  pid: number;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are loosely typed JSON
  json<T = any>(): T;
  /** The `code` of a JSON error body, if any. */
  errorCode: string | undefined;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is, in place of `body`'s JSON. */
  rawBody?: Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface GovPostOptions {
  /** For ballots and withdrawals: the proposal's id, which the signature covers. */
  proposalId?: string;
  /** Who signs: member0 (default), or user0, who is no member. */
  as?: "member" | "user";
  timeoutMs?: number;
}

interface Credentials {
  ca: string;
  cert: string;
  key: string;
}

export interface CliResult {
  /** The exit code, or null if the process was killed (e.g. at the time-out). */
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface GovCliOptions {
  /** Who signs: `member0` (default) or another member whose `<name>_cert.pem`/`_privk.pem` are in the directory. */
  as?: string;
  /** The node to send it to; the first node by default. */
  node?: NetNode;
  timeoutMs?: number;
}

export interface ConsensusStatus {
  id: string;
  role: string;
  view: number;
  leader: string | null;
  commitSeqno: number;
  lastSeqno: number;
  /** The active configurations: the committed one, then any appended after the commit point. */
  configs?: Array<{ seqno: number; nodes: string[] }>;
}

/** True if the error says the request never reached a server (so it had no effect). */
export function connectionRefused(e: unknown): boolean {
  for (let err = e as { code?: string; cause?: unknown } | undefined; err; err = err.cause as typeof err) {
    if (err.code === "ECONNREFUSED") return true;
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Every process any network here started and has not seen die. If this test process ends
 * before a network's cleanup ran (a test time-out, an uncaught error, Ctrl-C), they are killed
 * on the way out rather than left running.
 */
const live = new Set<number>();
process.once("exit", () => {
  for (const pid of live) signal(pid, "SIGKILL");
});
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.once(sig, () => {
    for (const pid of live) signal(pid, "SIGKILL");
    process.exit(code);
  });
}

/** Direct children of `pid`, from /proc (the sandbox's node processes before it names them). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command name: state, then the parent pid.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export class Network {
  private readonly agents = new Map<string, Agent>();
  /** Node processes this test started itself (restarts, joiners), by pid. */
  private readonly restarted = new Map<number, ChildProcess>();
  private readonly logs: string[];
  private restarts = 0;
  private credentials: Credentials;
  private readonly memberCredentials: Credentials;
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
    const agents = [...this.agents.values()];
    this.agents.clear();
    for (const agent of agents) void agent.destroy();
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
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
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

  /** A client for `rpc` (`host:port`), presenting user0's certificate. */
  private agentFor(rpc: string): Agent {
    let agent = this.agents.get(rpc);
    if (!agent) {
      agent = new Agent({ connect: { ...this.credentials, timeout: 2_000 }, keepAliveTimeout: 2_000 });
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
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 5_000);
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

  private async closeAgents(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.destroy()));
  }

  /** The end of every log, for a failure message. */
  diagnostics(lines = 40): string {
    return this.logs.map((path) => tail(path, lines)).join("\n");
  }
}

function tail(path: string, lines = 40): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return `(${path}: no log)`;
  }
  return `--- ${path} (last ${lines} lines)\n${text.split("\n").slice(-lines).join("\n")}`;
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

export interface LedgerLine {
  seqno: number;
  view: number;
  frame: Uint8Array;
}

/** A ledger directory's entries from seqno 1 up to `upTo`, read with the strict audit reader. */
export async function ledgerPrefix(dir: string, upTo: number): Promise<LedgerLine[]> {
  const out: LedgerLine[] = [];
  for await (const { entry } of readLedgerDir(dir)) {
    if (entry.seqno > upTo) break;
    out.push({ seqno: entry.seqno, view: entry.view, frame: entry.frame });
  }
  return out;
}
