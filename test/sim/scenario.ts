import type { RaftConfig } from "../../src/consensus/index.ts";
import type { NetworkFaults } from "./network.ts";
import type { Prng } from "./prng.ts";

export type FaultKind =
  | "partition"
  | "isolate"
  | "heal"
  | "crash"
  | "crash_primary"
  | "restart"
  | "pause"
  | "reconfigure"
  | "snapshot";

/**
 * The shape of one run, drawn from the seed: cluster size, timing, how hostile the network is,
 * which faults happen how often. Different seeds explore different regimes.
 */
export interface Scenario {
  nodes: number;
  clients: number;
  keys: string[];
  tickMs: number;
  raft: Partial<RaftConfig>;
  network: NetworkFaults;
  faultEveryMs: [number, number];
  faults: Array<[FaultKind, number]>;
  signEvery: number;
  signTicks: number;
  diskLatencyMs: [number, number];
  opTimeoutMs: number;
  thinkMs: [number, number];
  maxNodes: number;
}

export function drawScenario(prng: Prng): Scenario {
  // A third of the runs have election timeouts close to the network's delays: elections are
  // frequent and answers from earlier views keep arriving, which is where vote-counting and
  // view-handling bugs show.
  const stormy = prng.chance(0.33);
  const electionTicksMin = stormy ? prng.between(3, 6) : prng.between(8, 15);
  return {
    nodes: prng.pick([3, 3, 5]),
    clients: prng.between(2, 4),
    keys: ["x", "y", "z"].slice(0, prng.between(1, 3)),
    tickMs: 10,
    raft: {
      heartbeatTicks: stormy ? 1 : prng.pick([1, 1, 2]),
      electionTicksMin,
      electionTicksMax: electionTicksMin + (stormy ? prng.between(1, 4) : prng.between(4, 15)),
      maxBatchEntries: prng.pick([1, 3, 64]),
      maxInflight: prng.pick([1, 2, 8]),
    },
    network: {
      loss: prng.pick([0, 0.01, 0.05, 0.15]),
      duplicate: prng.pick([0, 0.02, 0.1]),
      minDelayMs: 1,
      maxDelayMs: prng.between(2, 25),
      spike: prng.pick([0, 0.01, 0.05]),
      spikeMaxMs: prng.between(50, 400),
    },
    faultEveryMs: [30, prng.between(100, 400)],
    faults: [
      ["partition", prng.between(0, 4)],
      ["isolate", prng.between(0, 3)],
      ["heal", prng.between(2, 6)],
      ["crash", prng.between(0, 3)],
      ["crash_primary", prng.between(0, 3)],
      ["restart", prng.between(2, 6)],
      ["pause", prng.between(0, 2)],
      ["reconfigure", prng.between(0, 3)],
      ["snapshot", prng.between(0, 4)],
    ],
    signEvery: prng.between(1, 4),
    signTicks: prng.between(1, 5),
    diskLatencyMs: [1, prng.between(1, 15)],
    opTimeoutMs: prng.between(300, 600),
    thinkMs: [0, prng.between(5, 60)],
    maxNodes: 7,
  };
}

export function pickFault(prng: Prng, faults: Array<[FaultKind, number]>): FaultKind | null {
  const total = faults.reduce((sum, [, weight]) => sum + weight, 0);
  if (total === 0) return null;
  let roll = prng.int(total);
  for (const [kind, weight] of faults) {
    if (roll < weight) return kind;
    roll -= weight;
  }
  return null;
}
