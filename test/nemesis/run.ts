/**
 * One nemesis round: a network of namespaced nodes, clients writing, reading and CASing through
 * every node while the seeded nemesis injects faults for `seconds`, then everything healed, the
 * clients run a little longer on a healthy network, and the whole run is judged (checks.ts).
 */
import { judge, type Verdict } from "./checks.ts";
import { Clients } from "./clients.ts";
import { NsCluster, sleep } from "./cluster.ts";
import { FAULT_KINDS, type FaultKind, Nemesis, type NemesisFigures, schedule } from "./nemesis.ts";
import { Random } from "./random.ts";

export interface RoundOptions {
  seed: number;
  seconds: number;
  nodes?: number;
  clients?: number;
  registers?: number;
  kinds?: readonly FaultKind[];
  /** Printed as the round goes (fault log lines). */
  log?: (line: string) => void;
}

export interface RoundResult {
  seed: number;
  verdict: Verdict;
  figures: NemesisFigures;
  faults: number;
  stats: Clients["stats"];
  restarts: number;
  dir: string;
}

export async function runRound(opts: RoundOptions): Promise<RoundResult> {
  const nodes = opts.nodes ?? 3;
  const cluster = await NsCluster.start({ nodes });
  let kept = false;
  try {
    const clients = new Clients(
      cluster,
      { clients: opts.clients ?? 6, registers: opts.registers ?? 4, requestTimeoutMs: 5_000 },
      new Random(opts.seed ^ 0x5eed),
    );
    const nemesis = new Nemesis(cluster);
    const faults = schedule(opts.seed, nodes, 10_000, opts.kinds ?? FAULT_KINDS);
    clients.start();
    await sleep(1_000);
    await nemesis.run(faults, Date.now() + opts.seconds * 1000);
    await nemesis.heal();
    // A healthy stretch: clients whose requests timed out during faults get answers again.
    await sleep(3_000);
    await clients.stop();
    for (const line of nemesis.figures.log) opts.log?.(line);
    const verdict = await judge(cluster, clients, 60_000);
    kept = verdict.violations.length > 0;
    if (kept)
      opts.log?.(`violations: the run's directory is kept in ${cluster.dir}\n${cluster.diagnostics(20)}`);
    return {
      seed: opts.seed,
      verdict,
      figures: nemesis.figures,
      faults: nemesis.faultCount,
      stats: clients.stats,
      restarts: cluster.restartCount,
      dir: cluster.dir,
    };
  } catch (e) {
    kept = true;
    opts.log?.(`round failed; directory kept in ${cluster.dir}\n${cluster.diagnostics(30)}`);
    throw e;
  } finally {
    await cluster.cleanup(kept);
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
