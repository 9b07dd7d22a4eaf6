/**
 * Commit throughput and latency over slow links: every node-to-node link passes through a relay
 * adding half the round-trip time each way (with 5% jitter), and closed-loop clients write
 * records to the primary with respond-on-commit, so each answer waits for a majority to persist
 * the transaction across the slow links. Clients talk to the primary directly (no delay).
 */
import { NsCluster, sleep } from "./cluster.ts";
import { percentile } from "./run.ts";

export interface LatencyResult {
  clients: number;
  commits: number;
  errors: number;
  /** Node-to-node connections the relays carried (0 would mean the links were not delayed). */
  relayed: number;
  throughput: number;
  p50: number;
  p99: number;
}

export async function measureLatency(opts: {
  rttMs: number;
  seconds: number;
  nodes: number;
  clients?: number;
}): Promise<LatencyResult> {
  const clients = opts.clients ?? 32;
  const cluster = await NsCluster.start({
    nodes: opts.nodes,
    link: { delayMs: opts.rttMs / 2, jitterMs: opts.rttMs * 0.05 },
  });
  try {
    let primary = (await cluster.findPrimary())?.node;
    for (let i = 0; !primary && i < 100; i++) {
      await sleep(100);
      primary = (await cluster.findPrimary())?.node;
    }
    if (!primary) throw new Error("no primary");
    const target = primary;
    const latencies: number[] = [];
    let errors = 0;
    // Warm up connections and the primary's first signatures, then measure.
    const run = async (until: number, record: boolean, c: number) => {
      for (let i = 0; performance.now() < until; i++) {
        const t0 = performance.now();
        try {
          const reply = await cluster.call(target, "PUT", `/app/log/public?id=${c * 10_000_000 + i}`, {
            body: { msg: "x".repeat(100) },
            headers: { "x-coco-wait": "commit" },
            timeoutMs: 10_000,
          });
          if (reply.status !== 200) throw new Error(String(reply.status));
          if (record) latencies.push(performance.now() - t0);
        } catch {
          if (record) errors++;
        }
      }
    };
    const warm = performance.now() + 2_000;
    await Promise.all(Array.from({ length: clients }, (_, c) => run(warm, false, c + 1)));
    const start = performance.now();
    const until = start + opts.seconds * 1000;
    await Promise.all(Array.from({ length: clients }, (_, c) => run(until, true, c + 100)));
    const elapsed = (performance.now() - start) / 1000;
    return {
      clients,
      commits: latencies.length,
      errors,
      relayed: cluster.relays.reduce((n, r) => n + r.stats.connections, 0),
      throughput: latencies.length / elapsed,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
    };
  } finally {
    // COCO_NEMESIS_KEEP=1 keeps the nodes' directories and logs (the path is printed).
    if (process.env.COCO_NEMESIS_KEEP === "1") console.error(`kept: ${cluster.dir}`);
    await cluster.cleanup(process.env.COCO_NEMESIS_KEEP === "1");
  }
}
