/**
 * The nemesis: a seeded schedule of faults applied to a running NsCluster, one at a time, each
 * held for a few seconds and then healed: partitions (minority/majority, isolated primary,
 * bridge, one-way), kill -9 and restart, SIGSTOP/SIGCONT, clock jumps and a full disk. The
 * schedule (kinds, targets as indices, durations, pauses) comes from the seed alone; which node
 * is primary when "isolate the primary" runs depends on the run, and is logged.
 */
import { type NsCluster, type NsNode, sleep } from "./cluster.ts";
import { Random } from "./random.ts";

export const FAULT_KINDS = [
  "partition",
  "isolate-primary",
  "bridge",
  "one-way",
  "kill",
  "pause",
  "clock",
  "disk-full",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** A random permutation of node indices the fault picks its targets from. */
  order: number[];
  holdMs: number;
  quietMs: number;
  /** For clock jumps: the offset in ms (either sign). */
  clockMs: number;
}

/** The first `count` faults of the schedule a seed gives (the run takes as many as time allows). */
export function schedule(
  seed: number,
  nodes: number,
  count: number,
  kinds: readonly FaultKind[] = FAULT_KINDS,
): Fault[] {
  const random = new Random(seed);
  return Array.from({ length: count }, () => ({
    kind: random.pick(kinds),
    order: random.shuffle(Array.from({ length: nodes }, (_, i) => i)),
    holdMs: random.between(2_000, 6_000),
    quietMs: random.between(1_000, 3_000),
    clockMs: (random.next() < 0.5 ? -1 : 1) * random.between(5_000, 300_000),
  }));
}

export interface NemesisFigures {
  faults: Record<string, number>;
  /** ms from isolating the primary to a new primary in the majority. */
  failovers: number[];
  /** ms from healing to every previously cut-off node reaching the commit point seen at heal. */
  catchUps: number[];
  log: string[];
}

export class Nemesis {
  readonly figures: NemesisFigures = { faults: {}, failovers: [], catchUps: [], log: [] };
  private readonly started = performance.now();

  constructor(private readonly cluster: NsCluster) {}

  private say(line: string): void {
    this.figures.log.push(`${((performance.now() - this.started) / 1000).toFixed(1)}s ${line}`);
  }

  /** Applies faults from the schedule until `deadline` (Date.now()), healing after each. */
  async run(faults: Fault[], deadline: number): Promise<void> {
    for (const fault of faults) {
      if (Date.now() + fault.holdMs > deadline) break;
      const cut = await this.apply(fault);
      this.figures.faults[fault.kind] = (this.figures.faults[fault.kind] ?? 0) + 1;
      await sleep(fault.holdMs);
      await this.heal(cut);
      await sleep(fault.quietMs);
    }
  }

  /** Applies one fault; returns the nodes it cut off from the rest (to time their catch-up). */
  private async apply(fault: Fault): Promise<NsNode[]> {
    const c = this.cluster;
    const n = c.nodes.length;
    const node = (k: number) => c.nodes[fault.order[k]!]!;
    const minority = fault.order.slice(0, Math.floor((n - 1) / 2));
    switch (fault.kind) {
      case "partition": {
        const rest = fault.order.slice(minority.length);
        c.hosts.partition([minority, rest]);
        this.say(`partition ${names(c, minority)} | ${names(c, rest)}`);
        return minority.map((i) => c.nodes[i]!);
      }
      case "isolate-primary": {
        const found = await c.findPrimary();
        const primary = found?.node ?? node(0);
        const others = c.nodes.filter((x) => x !== primary);
        c.hosts.partition([[primary.index], others.map((x) => x.index)]);
        this.say(`isolate primary ${primary.name} (view ${found?.view ?? "?"})`);
        if (found) {
          const t0 = performance.now();
          const until = t0 + fault.holdMs;
          while (performance.now() < until) {
            const next = await c.findPrimary(others);
            if (next && next.view > found.view) {
              const ms = performance.now() - t0;
              this.figures.failovers.push(ms);
              this.say(`  new primary ${next.node.name} in view ${next.view} after ${Math.round(ms)} ms`);
              break;
            }
            await sleep(50);
          }
        }
        return [primary];
      }
      case "bridge": {
        const [a, b, mid] = [fault.order[0]!, fault.order[1]!, fault.order[2]!];
        const left = [a, ...fault.order.slice(3).filter((_, k) => k % 2 === 0)];
        const right = [b, ...fault.order.slice(3).filter((_, k) => k % 2 === 1)];
        c.hosts.bridgeThrough(left, mid, right);
        this.say(`bridge ${names(c, left)} <- ${c.nodes[mid]!.name} -> ${names(c, right)}`);
        return [];
      }
      case "one-way": {
        c.hosts.oneWay(fault.order[0]!, fault.order[1]!);
        this.say(`one-way: ${node(0).name} -> ${node(1).name} dropped`);
        return [node(0)];
      }
      case "kill":
        await c.kill(node(0));
        this.say(`kill -9 ${node(0).name}`);
        return [node(0)];
      case "pause":
        c.pause(node(0));
        this.say(`SIGSTOP ${node(0).name}`);
        return [node(0)];
      case "clock":
        c.setClock(node(0), fault.clockMs);
        this.say(`clock of ${node(0).name} jumps ${fault.clockMs > 0 ? "+" : ""}${fault.clockMs} ms`);
        return [];
      case "disk-full":
        c.fillDisk(node(0));
        this.say(`disk of ${node(0).name} full`);
        return [node(0)];
    }
  }

  /** Undoes every fault: network healed, nodes resumed, disks freed, clocks reset, dead nodes restarted. */
  async heal(cut: NsNode[] = []): Promise<void> {
    const c = this.cluster;
    c.hosts.heal();
    for (const node of c.nodes) {
      c.resume(node);
      c.freeDisk(node);
      c.setClock(node, 0);
    }
    for (const node of c.nodes) {
      if (!c.running(node)) {
        const exited = node.child?.exitCode
          ? ` (it exited ${node.child.exitCode}: ${c.lastError(node) ?? "?"})`
          : "";
        this.say(`restart ${node.name}${exited}`);
        await c.restart(node);
      }
    }
    this.say("healed");
    if (cut.length > 0) await this.timeCatchUp(cut);
  }

  /** Waits (bounded) until the cut-off nodes reach the commit point the others had at heal time. */
  private async timeCatchUp(cut: NsNode[]): Promise<void> {
    const c = this.cluster;
    const t0 = performance.now();
    let target: number | undefined;
    const until = t0 + 20_000;
    while (performance.now() < until) {
      if (target === undefined) {
        const others = c.nodes.filter((x) => !cut.includes(x));
        const primary = await c.findPrimary(others.length > 0 ? others : c.nodes);
        if (primary) target = (await c.consensus(primary.node).catch(() => undefined))?.commitSeqno;
      } else {
        const seqnos = await Promise.all(
          cut.map((x) =>
            c.consensus(x).then(
              (s) => s.commitSeqno,
              () => -1,
            ),
          ),
        );
        if (seqnos.every((s) => s >= target!)) {
          const ms = performance.now() - t0;
          this.figures.catchUps.push(ms);
          this.say(`  ${cut.map((x) => x.name).join(", ")} caught up to ${target} in ${Math.round(ms)} ms`);
          return;
        }
      }
      await sleep(50);
    }
    this.say(`  ${cut.map((x) => x.name).join(", ")} did not catch up within 20 s`);
  }

  get faultCount(): number {
    return Object.values(this.figures.faults).reduce((a, b) => a + b, 0);
  }
}

function names(c: NsCluster, indices: number[]): string {
  return indices.map((i) => c.nodes[i]!.name).join(",");
}
