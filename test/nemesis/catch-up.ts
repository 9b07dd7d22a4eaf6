/**
 * Time for a partitioned backup to catch up: cut one backup from the other two (both ways) for
 * `holdMs` while a client writes through the primary, heal, and time until the backup's commit
 * point reaches the one the primary had at the heal. Just before the heal it records the backup's
 * TCP view of its links (`ss -tni` in its namespace: retransmission timer, back-off, unacked
 * bytes), which is where a stuck connection shows. `npm run nemesis -- --catch-up`.
 */
import { execFileSync } from "node:child_process";
import { budget } from "../e2e/waits.ts";
import { NsCluster as Cluster, type NsCluster, type NsNode, sleep } from "./cluster.ts";

export interface CatchUpResult {
  /** Milliseconds from the heal to the backup's catch-up, one per round (Infinity: not within 30 s). */
  times: number[];
  /** `ss -tni` lines of the backup's node-to-node connections just before each heal. */
  sockets: string[];
}

export async function measureCatchUp(opts: { rounds: number; holdMs: number }): Promise<CatchUpResult> {
  const cluster = await Cluster.start({ nodes: 3 });
  const result: CatchUpResult = { times: [], sockets: [] };
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const primary = await primaryOf(cluster);
      const backup = cluster.nodes.find((n) => n !== primary)!;
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          await cluster
            .call(primary, "PUT", `/app/log/public?id=${round * 1_000_000 + i}`, {
              body: { msg: "catch-up" },
            })
            .catch(() => undefined);
          await sleep(20);
        }
      })();
      const others = cluster.nodes.filter((n) => n !== backup).map((n) => n.index);
      cluster.hosts.partition([[backup.index], others]);
      await sleep(opts.holdMs);
      result.sockets.push(sockets(cluster, backup));
      const target = (await cluster.consensus(primary)).commitSeqno;
      cluster.hosts.heal();
      const t0 = performance.now();
      const healedAt = Date.now();
      let ms = Number.POSITIVE_INFINITY;
      while (performance.now() - t0 < 30_000) {
        const seqno = await cluster.consensus(backup).then(
          (s) => s.commitSeqno,
          () => -1,
        );
        if (seqno >= target) {
          ms = performance.now() - t0;
          break;
        }
        await sleep(20);
      }
      writing = false;
      await writer;
      result.times.push(ms);
      console.log(
        `round ${round}: ${backup.name} cut ${opts.holdMs} ms, caught up in ${Math.round(ms)} ms (healed at ${healedAt}, commit ${target})`,
      );
      await sleep(2_000);
    }
    return result;
  } finally {
    // COCO_NEMESIS_KEEP=1 keeps the run's directory (the nodes' logs) to see where the time went.
    const keep = process.env.COCO_NEMESIS_KEEP === "1";
    if (keep) console.log(`kept ${cluster.dir}`);
    await cluster.cleanup(keep);
  }
}

async function primaryOf(cluster: NsCluster): Promise<NsNode> {
  for (let i = 0; i < 200; i++) {
    const found = await cluster.findPrimary();
    if (found) return found.node;
    await sleep(100);
  }
  throw new Error("no primary");
}

function sockets(cluster: NsCluster, node: NsNode): string {
  const argv = cluster.hosts.wrap(node.host, [
    "ss",
    "-tni",
    "state",
    "established",
    "( sport = :8001 or dport = :8001 )",
  ]);
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: budget(5_000) });
  } catch (e) {
    return `ss failed: ${(e as Error).message}`;
  }
}
