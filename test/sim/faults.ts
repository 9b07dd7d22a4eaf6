import type { EventQueue } from "./events.ts";
import { CALM, type SimNetwork } from "./network.ts";
import type { SimNode } from "./node.ts";
import type { Packet } from "./packets.ts";
import type { Prng } from "./prng.ts";
import { type FaultKind, pickFault, type Scenario } from "./scenario.ts";

/** What the fault schedule needs of the simulation. */
export interface FaultHost {
  readonly queue: EventQueue;
  readonly prng: Prng;
  readonly scenario: Scenario;
  readonly net: SimNetwork<Packet>;
  readonly nodes: Map<string, SimNode>;
  /** Faults stop here; the calm phase starts. */
  readonly faultEnd: number;
  /** Adds a fresh node with an empty disk (not yet in any configuration); returns its id. */
  addNode(): string;
  trace(line: string): void;
  count(key: string): void;
}

/**
 * The faults of one run: drawn from the scenario at random times until `faultEnd` (partitions,
 * crashes and restarts, pauses, snapshots, reconfigurations), then the calm phase in which
 * everything heals.
 */
export class FaultSchedule {
  constructor(private readonly host: FaultHost) {}

  /** Schedules the next fault (each fault schedules the one after it). */
  scheduleNext(): void {
    const [lo, hi] = this.host.scenario.faultEveryMs;
    const at = this.host.queue.now + this.host.prng.between(lo, hi);
    if (at >= this.host.faultEnd) return;
    this.host.queue.at(at, () => {
      const kind = pickFault(this.host.prng, this.host.scenario.faults);
      if (kind && this.inject(kind)) this.host.count(`fault_${kind}`);
      this.scheduleNext();
    });
  }

  private inject(kind: FaultKind): boolean {
    const ids = [...this.host.nodes.keys()];
    const alive = ids.filter((id) => this.host.nodes.get(id)!.alive && !this.host.nodes.get(id)!.retired);
    switch (kind) {
      case "partition": {
        const shuffled = [...ids].sort(() => this.host.prng.float() - 0.5);
        const cut = this.host.prng.between(1, shuffled.length - 1);
        const oneWay = this.host.prng.chance(0.3);
        this.host.net.partition([shuffled.slice(0, cut), shuffled.slice(cut)], oneWay);
        this.host.trace(
          `FAULT partition ${shuffled.slice(0, cut)} | ${shuffled.slice(cut)}${oneWay ? " (one way)" : ""}`,
        );
        return true;
      }
      case "isolate": {
        const id = this.host.prng.pick(ids);
        this.host.net.partition([[id], ids.filter((x) => x !== id)], false);
        this.host.trace(`FAULT isolate ${id}`);
        return true;
      }
      case "heal":
        this.host.net.heal();
        this.host.trace("FAULT heal");
        return true;
      case "crash":
      case "crash_primary": {
        const candidates =
          kind === "crash" ? alive : alive.filter((id) => this.host.nodes.get(id)!.raft!.role === "primary");
        if (candidates.length === 0) return false;
        const id = this.host.prng.pick(candidates);
        this.host.trace(`FAULT crash ${id}`);
        this.host.nodes.get(id)!.crash();
        return true;
      }
      case "restart": {
        const down = ids.filter((id) => !this.host.nodes.get(id)!.alive);
        if (down.length === 0) return false;
        const id = this.host.prng.pick(down);
        this.host.trace(`FAULT restart ${id}`);
        this.host.nodes.get(id)!.start();
        return true;
      }
      case "pause": {
        if (alive.length === 0) return false;
        const id = this.host.prng.pick(alive);
        const node = this.host.nodes.get(id)!;
        node.pausedUntil = this.host.queue.now + this.host.prng.between(20, 400);
        this.host.trace(`FAULT pause ${id} until ${node.pausedUntil}`);
        return true;
      }
      case "snapshot": {
        if (alive.length === 0) return false;
        return this.host.nodes.get(this.host.prng.pick(alive))!.takeSnapshot();
      }
      case "reconfigure":
        return this.reconfigure(alive);
    }
  }

  /** The primary adds a fresh node or removes one (possibly itself), one change at a time. */
  private reconfigure(alive: string[]): boolean {
    const primary = alive.map((id) => this.host.nodes.get(id)!).find((n) => n.raft!.canPropose);
    if (!primary) return false;
    const raft = primary.raft!;
    // Usually one change at a time, as governance would; sometimes another while one is pending.
    if (raft.activeConfigs().length > 1 && this.host.prng.chance(0.7)) return false;
    const members = raft.activeConfigs().at(-1)!;
    const canAdd = members.length < 5 && this.host.nodes.size < this.host.scenario.maxNodes;
    const canRemove = members.length > 3;
    if (!canAdd && !canRemove) return false;
    let next: string[];
    if (canAdd && (!canRemove || this.host.prng.chance(0.5))) {
      const id = this.host.addNode();
      next = [...members, id];
    } else {
      const leaving = this.host.prng.pick(members);
      next = members.filter((id) => id !== leaving);
    }
    this.host.trace(`FAULT reconfigure by ${primary.id}: [${members}] -> [${next}]`);
    return primary.reconfigure(next);
  }

  /** The calm phase: faults stop, everything heals and restarts, the service must recover. */
  calm(): void {
    this.host.trace("CALM: heal, restart, unpause");
    this.host.net.heal();
    this.host.net.faults = { ...CALM, maxDelayMs: Math.min(5, this.host.scenario.network.maxDelayMs) };
    for (const node of this.host.nodes.values()) {
      node.pausedUntil = 0;
      if (!node.alive) node.start();
    }
  }
}
