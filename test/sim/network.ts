import type { EventQueue } from "./events.ts";
import type { Prng } from "./prng.ts";

export interface NetworkFaults {
  /** Probability that a message is lost. */
  loss: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Probability of a much longer delay, which also reorders. */
  spike: number;
  spikeMaxMs: number;
}

export const CALM: NetworkFaults = {
  loss: 0,
  duplicate: 0,
  minDelayMs: 1,
  maxDelayMs: 5,
  spike: 0,
  spikeMaxMs: 0,
};

/**
 * The simulated network: every message gets a random delay (so messages reorder), may be lost or
 * duplicated, and is dropped if its link is cut when it would arrive. Links are directed, so a
 * partition may be asymmetric (a hears b, b does not hear a).
 */
export class SimNetwork<P> {
  private readonly cut = new Set<string>();
  faults: NetworkFaults;
  readonly stats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, blocked: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly prng: Prng,
    faults: NetworkFaults,
    private readonly deliver: (from: string, to: string, packet: P) => void,
  ) {
    this.faults = faults;
  }

  /**
   * Sends a packet. `mayDuplicate` is false for client requests and replies: they travel over a
   * connection (HTTP over TCP) that never delivers a request twice.
   */
  send(from: string, to: string, packet: P, mayDuplicate = true): void {
    this.stats.sent++;
    const f = this.faults;
    if (this.prng.chance(f.loss)) {
      this.stats.lost++;
      return;
    }
    const copies = mayDuplicate && this.prng.chance(f.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = this.prng.between(f.minDelayMs, f.maxDelayMs);
      if (this.prng.chance(f.spike)) delay += this.prng.between(0, f.spikeMaxMs);
      this.queue.after(delay, () => {
        if (this.cut.has(`${from}>${to}`)) {
          this.stats.blocked++;
          return;
        }
        this.stats.delivered++;
        this.deliver(from, to, packet);
      });
    }
  }

  /** Cuts every link between the groups; with `oneWay`, only from earlier groups to later ones. */
  partition(groups: string[][], oneWay: boolean): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j || (oneWay && j < i)) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut.add(`${a}>${b}`);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }
}
