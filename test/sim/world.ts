import { pack, unpack } from "msgpackr";
import type { Entry, UnsafeBugs } from "../../src/consensus/index.ts";
import type { LedgerSecret } from "../../src/ledger/index.ts";
import { WriteRegistry } from "./app.ts";
import { Checker, SafetyViolation } from "./checker.ts";
import { type HistoryOp, SimClient } from "./client.ts";
import { genesisEntry } from "./configuration.ts";
import { EventQueue } from "./events.ts";
import { FaultSchedule } from "./faults.ts";
import { checkHistory } from "./history-check.ts";
import { IDENTITY } from "./keys.ts";
import { SimNetwork } from "./network.ts";
import { SimNode } from "./node.ts";
import type { NodeBugs, NodeEnv } from "./node-env.ts";
import { describePacket, type Packet } from "./packets.ts";
import { Prng } from "./prng.ts";
import { drawScenario, type Scenario } from "./scenario.ts";
import { StaleReadNemesis, type Workload, workloadScenario } from "./stale-reads.ts";

export interface SimOptions {
  seed: number;
  /** Keep a readable trace of every event. */
  trace?: boolean;
  /** What the clients do and which faults hit them (default `mixed`; see stale-reads.ts). */
  workload?: Workload;
  /** Deliberate protocol bugs (tests of the simulator itself). */
  unsafe?: UnsafeBugs;
  /** Deliberate mistakes in how a node drives its engine (tests of the simulator itself). */
  nodeBugs?: NodeBugs;
  /** How long faults are injected, then how long the calm phase lasts (simulated ms). */
  faultMs?: number;
  calmMs?: number;
  /** Search budget of the linearizability check (steps, so verdicts do not depend on the machine). */
  lincheckSteps?: number;
  /**
   * Simulated ms between the periodic checks of the engines (a replay of one node's ledger and
   * receipts from each live node); 0 turns them off. The final checks always run.
   */
  engineCheckMs?: number;
}

/** Receipts verified on each live node at the end of a run, and at each periodic check. */
const RECEIPTS_AT_END = 3;
const RECEIPTS_PERIODIC = 1;
/** The engine's clock at simulated time 0 (receipts carry it as their issue time). */
const CLOCK_BASE = Date.UTC(2025, 0, 2);

export type FailureKind = "safety" | "liveness" | "linearizability" | "crash";

export interface SimResult {
  seed: number;
  ok: boolean;
  failure?: { kind: FailureKind; message: string; atMs: number };
  /** "unknown" when the linearizability search ran out of budget. */
  linearizable: "ok" | "illegal" | "unknown" | "skipped";
  stats: Record<string, number>;
  trace: string[];
  scenario: Scenario;
}

class LivenessFailure extends Error {}

/**
 * One seeded run: a cluster of simulated nodes, clients, a hostile network and disks, a fault
 * schedule, then a calm phase in which the service must recover. Everything random comes from
 * one PRNG seeded with `seed`, so a run replays exactly.
 */
export class Simulation {
  readonly queue = new EventQueue();
  readonly prng: Prng;
  readonly scenario: Scenario;
  readonly checker: Checker;
  readonly net: SimNetwork<Packet>;
  readonly nodes = new Map<string, SimNode>();
  readonly clients: SimClient[] = [];
  readonly history: HistoryOp[] = [];
  private readonly historyKeys: string[] = [];
  private readonly traceLines: string[] = [];
  private readonly env: NodeEnv;
  private readonly faultEnd: number;
  private readonly end: number;
  private nextNodeNumber = 1;
  private okAfterCalm = 0;
  private readonly counts: Record<string, number> = {};
  private readonly writes = new WriteRegistry();
  /** Draws the engine checks' samples, so checking leaves the run's own randomness alone. */
  private readonly sampler: Prng;
  private genesis: Entry | undefined;
  private readonly faults: FaultSchedule;

  constructor(private readonly options: SimOptions) {
    this.prng = new Prng(options.seed);
    this.sampler = new Prng(options.seed ^ 0x5eed5eed);
    this.scenario = workloadScenario(options.workload ?? "mixed", drawScenario(this.prng), this.prng);
    const secret: LedgerSecret = {
      version: 0,
      key: Uint8Array.from({ length: 32 }, () => this.prng.int(256)),
    };
    this.checker = new Checker(() => this.queue.now, secret, IDENTITY.serviceCertPem, this.writes);
    this.faultEnd = options.faultMs ?? 3000;
    this.end = this.faultEnd + (options.calmMs ?? 2000);
    this.net = new SimNetwork<Packet>(this.queue, this.prng, this.scenario.network, (from, to, packet) =>
      this.deliver(from, to, packet),
    );
    const trace = options.trace ? (line: string) => this.trace(line) : null;
    this.env = {
      queue: this.queue,
      prng: this.prng,
      net: this.net,
      observer: this.checker,
      trace,
      raft: { ...this.scenario.raft, unsafe: options.unsafe },
      bugs: options.nodeBugs ?? {},
      tickMs: this.scenario.tickMs,
      signEvery: this.scenario.signEvery,
      signTicks: this.scenario.signTicks,
      diskLatencyMs: this.scenario.diskLatencyMs,
      secret,
      serviceCertPem: IDENTITY.serviceCertPem,
      writes: this.writes,
      clockBase: CLOCK_BASE,
    };
    this.faults = new FaultSchedule({
      queue: this.queue,
      prng: this.prng,
      scenario: this.scenario,
      net: this.net,
      nodes: this.nodes,
      faultEnd: this.faultEnd,
      addNode: () => {
        const id = this.newId();
        this.addNode(id, null);
        return id;
      },
      trace: (line) => this.trace(line),
      count: (key) => this.count(key),
    });
    const ids = Array.from({ length: this.scenario.nodes }, () => this.newId());
    for (const id of ids) this.addNode(id, ids);
    const stopAt = this.end - this.scenario.opTimeoutMs - 100;
    const nemesis =
      options.workload === "stale-reads"
        ? new StaleReadNemesis(
            this.queue,
            this.prng,
            this.net,
            this.nodes,
            (line) => this.trace(line),
            this.faultEnd,
          )
        : null;
    for (let i = 0; i < this.scenario.clients; i++) {
      const client = new SimClient(i, {
        queue: this.queue,
        prng: this.prng,
        net: this.net,
        history: this.history,
        historyKeys: this.historyKeys,
        trace,
        nodes: () => [...this.nodes.keys()],
        keys: this.scenario.keys,
        opTimeoutMs: this.scenario.opTimeoutMs,
        thinkMs: this.scenario.thinkMs,
        stopAt,
        ...nemesis?.role(i),
      });
      this.clients.push(client);
      client.start();
    }
    this.faults.scheduleNext();
    nemesis?.start();
    this.queue.at(this.faultEnd, () => this.faults.calm());
    const every = options.engineCheckMs ?? 2500;
    if (every > 0) this.queue.after(every, () => this.periodicChecks(every));
  }

  run(): SimResult {
    let failure: SimResult["failure"];
    let linearizable: SimResult["linearizable"] = "skipped";
    try {
      while (this.queue.runNext(this.end)) {
        // Events keep coming forever (ticks); runNext stops at the end time.
      }
      // A node that joined late may still be catching up (with one-entry batches that takes a
      // while): give the calm phase more time, but only as long as it is not converged.
      const deadline = this.end + 3 * (this.options.calmMs ?? 2000);
      while (!this.converged() && this.queue.now < deadline) {
        const until = this.queue.now + 100;
        while (this.queue.runNext(until)) {
          // Run another 100 ms.
        }
      }
      this.finalChecks();
      linearizable = this.checkHistory();
      if (linearizable === "illegal")
        failure = { kind: "linearizability", message: this.lincheckText, atMs: this.end };
    } catch (error) {
      const kind: FailureKind =
        error instanceof SafetyViolation ? "safety" : error instanceof LivenessFailure ? "liveness" : "crash";
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failure = { kind, message, atMs: this.queue.now };
      this.trace(`FAILURE ${kind}: ${message}`);
    }
    return {
      seed: this.options.seed,
      ok: failure === undefined,
      failure,
      linearizable,
      stats: this.collectStats(),
      trace: this.traceLines,
      scenario: this.scenario,
    };
  }

  // ---------------------------------------------------------------------------------------------

  private newId(): string {
    return `n${this.nextNodeNumber++}`;
  }

  /**
   * Every node's log starts empty with no configuration. The initial members' disks hold the
   * genesis entry, which carries the first configuration; a node added later learns every
   * configuration from the log (or a snapshot), as Coco's nodes do.
   */
  private addNode(id: string, genesis: string[] | null): SimNode {
    const node = new SimNode(id, this.env);
    if (genesis) {
      node.disk.append([this.genesisEntry(genesis)]);
      node.disk.sync();
    }
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  /** The genesis entry of every initial member's disk: made once, the same bytes on each. */
  private genesisEntry(ids: string[]): Entry {
    this.genesis ??= genesisEntry(this.env.secret, ids, CLOCK_BASE);
    return this.genesis;
  }

  private deliver(from: string, to: string, packet: Packet): void {
    if (this.options.trace) this.trace(`${from}->${to} ${describePacket(packet)}`);
    const node = this.nodes.get(to);
    if (node) {
      if (!node.alive) return;
      // Raft messages cross the wire as msgpack, as they will between real nodes.
      node.receive(
        from,
        packet.kind === "raft" ? { kind: "raft", message: unpack(pack(packet.message)) } : packet,
      );
      return;
    }
    const client = this.clients.find((c) => c.name === to);
    if (client) {
      const before = client.stats.ok;
      client.receive(packet);
      if (this.queue.now >= this.faultEnd && client.stats.ok > before) this.okAfterCalm++;
    }
  }

  private converged(): boolean {
    try {
      this.livenessChecks();
      return true;
    } catch (error) {
      if (error instanceof LivenessFailure) return false;
      throw error;
    }
  }

  private live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive && !n.retired);
  }

  private livenessChecks(): void {
    const live = this.live();
    const primaries = live.filter((n) => n.raft!.role === "primary");
    if (primaries.length !== 1) {
      throw new LivenessFailure(
        `${primaries.length} primaries after the calm phase: [${primaries.map((n) => n.id)}]`,
      );
    }
    const primary = primaries[0]!.raft!;
    const members = new Set(primary.activeConfigs().flat());
    for (const node of live) {
      if (!members.has(node.id)) continue;
      if (node.raft!.commitSeqno !== primary.commitSeqno) {
        throw new LivenessFailure(
          `${node.id} committed ${node.raft!.commitSeqno}, primary ${primaries[0]!.id} ${primary.commitSeqno}, after the calm phase`,
        );
      }
    }
    if (this.okAfterCalm === 0) throw new LivenessFailure("no client operation succeeded in the calm phase");
  }

  /** End of run: liveness, then every live node's ledger, its replay, and receipts. */
  private finalChecks(): void {
    this.livenessChecks();
    for (const node of this.live()) {
      this.checker.checkLedger(node);
      this.checker.checkReplay(node);
      this.checker.checkReceipts(node, this.sampler, RECEIPTS_AT_END);
    }
  }

  /**
   * Every `every` ms: receipts from each live node, and one of them replays its ledger. These
   * only read, and draw from their own PRNG, so a run goes the same with or without them.
   */
  private periodicChecks(every: number): void {
    const live = this.live();
    for (const node of live) this.checker.checkReceipts(node, this.sampler, RECEIPTS_PERIODIC);
    if (live.length > 0) {
      const node = live[this.sampler.int(live.length)]!;
      this.checker.checkLedger(node);
      this.checker.checkReplay(node);
    }
    this.queue.after(every, () => this.periodicChecks(every));
  }

  private lincheckText = "";

  /** The client history, linearizable or not (see history-check.ts). */
  private checkHistory(): SimResult["linearizable"] {
    const { result, counterExample } = checkHistory({
      history: this.history,
      historyKeys: this.historyKeys,
      nodes: this.nodes.values(),
      writes: this.writes,
      writeCommitTimes: this.checker.writeCommitTimes,
      maxSteps: this.options.lincheckSteps ?? 500_000,
      count: (key) => this.count(key),
    });
    if (result === "illegal") this.lincheckText = counterExample;
    return result;
  }

  private collectStats(): Record<string, number> {
    const disk = { syncs: 0, lostWrites: 0, tornWrites: 0 };
    for (const node of this.nodes.values()) {
      disk.syncs += node.disk.stats.syncs;
      disk.lostWrites += node.disk.stats.lostWrites;
      disk.tornWrites += node.disk.stats.tornWrites;
    }
    const clients = { ok: 0, unknown: 0, redirects: 0 };
    for (const c of this.clients) {
      clients.ok += c.stats.ok;
      clients.unknown += c.stats.unknown;
      clients.redirects += c.stats.redirects;
    }
    return {
      nodes: this.nodes.size,
      committed: this.checker.committedSeqno,
      ...this.checker.stats,
      messages: this.net.stats.sent,
      ...disk,
      ops_ok: clients.ok,
      ops_unknown: clients.unknown,
      redirects: clients.redirects,
      ...this.counts,
    };
  }

  private count(key: string): void {
    this.counts[key] = (this.counts[key] ?? 0) + 1;
  }

  private trace(line: string): void {
    if (this.options.trace) this.traceLines.push(`${String(this.queue.now).padStart(6)} ${line}`);
  }
}

export function runSeed(options: SimOptions): SimResult {
  return new Simulation(options).run();
}
