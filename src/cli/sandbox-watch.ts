import { readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "undici";
import type { NetworkFile } from "./network-file.ts";
import { describeExit, type SandboxNode } from "./sandbox-node.ts";

const POLL_MS = 1_000;
const REQUEST_TIMEOUT_MS = 900;
/** A node that exits this soon after starting, this many times in a row, is left down. */
const QUICK_EXIT_MS = 15_000;
const QUICK_EXITS_ALLOWED = 3;
const RESTART_DELAY_MS = 300;

export interface WatchOptions {
  /** Start a node again when it exits (the sandbox's default; `--no-restart` turns it off). */
  restart: boolean;
  certPath: string;
  networkFile: string;
  network: NetworkFile;
  print: (line: string) => void;
}

/**
 * Watches a running sandbox and says what happens, one line per event: a node exited (and how),
 * it was started again, it caught up with the service, a new primary was elected. Keeps
 * network.json's `primary` and `pid`s current, so `coco` commands find the primary.
 */
export class SandboxWatch {
  private readonly agent: Agent;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private primary: string;
  private readonly quickExits = new Map<SandboxNode, number>();
  /** Restarted nodes and the commit seqno they must reach to have caught up. */
  private readonly catchingUp = new Map<SandboxNode, number | undefined>();
  private lastCommit: number | undefined;
  /** Settles once every node is down for good (none left to restart). */
  readonly allDown: Promise<void>;
  private resolveAllDown!: () => void;

  constructor(
    private readonly nodes: SandboxNode[],
    private readonly opts: WatchOptions,
  ) {
    this.agent = new Agent({ connect: { ca: readFileSync(opts.certPath, "utf8") } });
    this.primary = opts.network.primary;
    this.allDown = new Promise((resolve) => {
      this.resolveAllDown = resolve;
    });
  }

  start(): void {
    for (const node of this.nodes) this.follow(node);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.agent.close().catch(() => {});
  }

  private follow(node: SandboxNode): void {
    const { child } = node;
    node.exited.then((exit) => {
      if (this.stopped || node.child !== child) return;
      const name = node.slot.name;
      const log = node.slot.logFile;
      if (!this.opts.restart) {
        this.opts.print(`${name} ${describeExit(exit)}; not restarting it (--no-restart). Its log: ${log}`);
        this.checkAllDown();
        return;
      }
      const quick = Date.now() - node.startedAt < QUICK_EXIT_MS ? (this.quickExits.get(node) ?? 0) + 1 : 0;
      this.quickExits.set(node, quick);
      if (quick >= QUICK_EXITS_ALLOWED) {
        this.opts.print(
          `${name} ${describeExit(exit)} again, ${quick} times within seconds of starting; leaving it down. Its log: ${log}`,
        );
        this.checkAllDown();
        return;
      }
      this.opts.print(
        `${name} ${describeExit(exit)}; restarting it (coco sandbox --no-restart turns this off)`,
      );
      setTimeout(() => {
        if (this.stopped) return;
        node.start();
        this.catchingUp.set(node, this.lastCommit);
        this.updatePid(node);
        this.follow(node);
      }, RESTART_DELAY_MS);
    });
  }

  private checkAllDown(): void {
    if (this.nodes.every((n) => !n.running)) this.resolveAllDown();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll().finally(() => this.schedule());
    }, POLL_MS);
  }

  private async poll(): Promise<void> {
    const answers = await Promise.all(
      this.nodes.map((node) =>
        node.running
          ? this.get<{ primary_id: string | null; current_view: number }>(node, "/node/network")
          : undefined,
      ),
    );
    // The node in the highest view knows the newest primary.
    let best: { primary_id: string | null; current_view: number } | undefined;
    for (const answer of answers) {
      if (answer && (best === undefined || answer.current_view > best.current_view)) best = answer;
    }
    if (best?.primary_id && best.primary_id !== this.primary) {
      this.primary = best.primary_id;
      const node = this.nodes.find((_, i) => this.opts.network.nodes[i]?.id === this.primary);
      this.opts.print(
        `new primary: ${node ? `${node.slot.name} (https://${node.slot.rpc})` : this.primary} in view ${best.current_view}`,
      );
      this.opts.network.primary = this.primary;
      this.save();
    }
    const primaryNode = this.nodes.find((_, i) => this.opts.network.nodes[i]?.id === this.primary);
    if (primaryNode?.running) {
      const commit = await this.get<{ transaction_id: string }>(primaryNode, "/node/commit");
      if (commit) this.lastCommit = seqnoOf(commit.transaction_id);
    }
    for (const [node, target] of this.catchingUp) {
      if (!node.running) continue;
      const commit = await this.get<{ transaction_id: string }>(node, "/node/commit");
      if (!commit) continue;
      const seqno = seqnoOf(commit.transaction_id);
      if (target === undefined ? seqno > 0 : seqno >= target) {
        this.catchingUp.delete(node);
        this.opts.print(`${node.slot.name} caught up (commit ${commit.transaction_id})`);
      }
    }
  }

  private async get<T>(node: SandboxNode, path: string): Promise<T | undefined> {
    try {
      const res = await request(`https://${node.slot.rpc}${path}`, {
        dispatcher: this.agent,
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
      });
      const text = await res.body.text();
      return res.statusCode === 200 ? (JSON.parse(text) as T) : undefined;
    } catch {
      return undefined;
    }
  }

  private updatePid(node: SandboxNode): void {
    const entry = this.opts.network.nodes.find((n) => n.rpc_address === node.slot.rpc);
    if (entry) entry.pid = node.pid;
    this.save();
  }

  private save(): void {
    writeFileSync(this.opts.networkFile, `${JSON.stringify(this.opts.network, null, 2)}\n`);
  }
}

function seqnoOf(txid: string): number {
  const seqno = Number(txid.split(".")[1]);
  return Number.isFinite(seqno) ? seqno : 0;
}
