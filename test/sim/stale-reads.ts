import type { EventQueue } from "./events.ts";
import type { SimNetwork } from "./network.ts";
import type { SimNode } from "./node.ts";
import type { Packet } from "./packets.ts";
import type { Prng } from "./prng.ts";
import type { Scenario } from "./scenario.ts";

/**
 * What the clients do and which faults hit them. `mixed` is the default: random faults of every
 * kind under a random mix of reads and writes. `stale-reads` aims at linearizable reads served by
 * a primary that has been cut off, and at votes between logs of different views: it isolates the
 * primary again and again, keeps one client reading from (and one writing to) the cut-off node
 * while another writes through the rest, so a read confirmed without a quorum returns a value the
 * new primary has already overwritten. Then it cuts off the new primary and lets the old one,
 * with its longer log of an older view, back in: a vote for that log would undo commits.
 */
export type Workload = "mixed" | "stale-reads";

export const WORKLOADS: readonly Workload[] = ["mixed", "stale-reads"];

/** One client's part in a workload: how often it reads, and where it sends (null: anywhere). */
export interface ClientRole {
  readShare: number;
  route: (() => string | null) | null;
  thinkMs?: [number, number];
}

/**
 * The scenario of a workload. `mixed` keeps what the seed drew (and draws nothing more, so its
 * seeds replay as before); `stale-reads` has three nodes, one key, a quiet network, tight
 * election timeouts (the new primary is elected before the old one's CheckQuorum notices) and
 * a signature after every write (the new primary's writes commit at once).
 */
export function workloadScenario(workload: Workload, drawn: Scenario, prng: Prng): Scenario {
  if (workload === "mixed") return drawn;
  const electionTicksMin = prng.between(8, 14);
  return {
    ...drawn,
    nodes: 3,
    clients: 3,
    keys: ["x"],
    raft: {
      ...drawn.raft,
      heartbeatTicks: 1,
      electionTicksMin,
      electionTicksMax: electionTicksMin + prng.between(1, 3),
    },
    network: {
      loss: 0,
      duplicate: 0,
      minDelayMs: 1,
      maxDelayMs: prng.between(1, 4),
      spike: 0,
      spikeMaxMs: 0,
    },
    faults: [],
    signEvery: 1,
    signTicks: 1,
    diskLatencyMs: [1, 2],
    thinkMs: [5, 20],
  };
}

/**
 * The stale-read nemesis. Each round cuts the current primary off from the other nodes (clients
 * still reach every node); once the others have a new primary, it cuts that one off instead and
 * lets the old one back; then it heals. Client 0 reads from whichever node is cut off, client 2
 * writes to it (so its log grows in its old view), client 1 writes through the rest.
 */
export class StaleReadNemesis {
  /** The node cut off in the current round, if any. */
  private isolated: string | null = null;
  rounds = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly prng: Prng,
    private readonly net: SimNetwork<Packet>,
    private readonly nodes: Map<string, SimNode>,
    private readonly trace: (line: string) => void,
    private readonly until: number,
  ) {}

  start(): void {
    this.queue.after(this.prng.between(300, 500), () => this.round());
  }

  role(client: number): ClientRole {
    if (client === 0) return { readShare: 1, route: () => this.isolated };
    // Quick writes to the cut-off primary make its log longer than the new primary's.
    if (client === 2) return { readShare: 0, route: () => this.isolated, thinkMs: [0, 5] };
    return { readShare: 0, route: () => this.writeTarget(), thinkMs: [20, 40] };
  }

  private round(): void {
    if (this.queue.now >= this.until) return;
    const first = this.primaryAmong([...this.nodes.keys()]);
    if (first) {
      this.isolate(first);
      this.rounds++;
      this.queue.after(this.prng.between(250, 400), () => {
        const second = this.primaryAmong([...this.nodes.keys()].filter((id) => id !== first));
        if (second) {
          this.net.heal();
          this.isolate(second);
        }
        this.queue.after(this.prng.between(300, 450), () => {
          this.net.heal();
          this.isolated = null;
          this.trace("FAULT stale-reads: heal");
        });
      });
    }
    this.queue.after(this.prng.between(1000, 1200), () => this.round());
  }

  private primaryAmong(ids: string[]): string | undefined {
    return ids.find((id) => {
      const node = this.nodes.get(id)!;
      return node.alive && node.raft?.role === "primary";
    });
  }

  private isolate(id: string): void {
    const rest = [...this.nodes.keys()].filter((other) => other !== id);
    this.net.partition([[id], rest], false);
    this.isolated = id;
    this.trace(`FAULT stale-reads: isolate primary ${id}`);
  }

  /** Outside the cut-off node: its primary if it has one, else any of its nodes. */
  private writeTarget(): string | null {
    if (this.isolated === null) return null;
    const rest = [...this.nodes.values()].filter((n) => n.id !== this.isolated && n.alive);
    const primary = rest.find((n) => n.raft?.role === "primary");
    return primary?.id ?? (rest.length > 0 ? this.prng.pick(rest).id : null);
  }
}
