/**
 * Coco against etcd, 3 nodes each, in one run on one machine: `npm run bench`.
 *
 *   npm run -s bench -- [--seconds 10] [--warmup 2] [--connections 64,256] [--rounds 3]
 *                       [--only coco|etcd] [--forwarded-connections 64] [--cpu-prof DIR]
 *                       [--curve secp384r1,secp256r1]
 *
 * Starts a 3-member etcd (Debian: `apt-get install -y etcd-server`) and a 3-node Coco sandbox per
 * service curve (by default two: P-384, the default identity curve, and P-256, the documented
 * choice for throughput), all kept up for the whole run, and drives each with the same
 * closed-loop load generator (bench/load.ts): 100-byte values under fresh keys, every write
 * answered only once committed (etcd: fsynced on a majority; Coco: `x-coco-wait: commit`, signed,
 * durable on a majority). Writes go to etcd's leader and to Coco's primary; each round also sends
 * writes to a backup of the first curve's Coco service, which forwards them. Rounds rotate which
 * system goes first. After the last round, every acknowledged key is read back from every node of
 * every system.
 *
 * Prints one JSON document: the ratios Coco/etcd (writes/s and p99) per curve and connection
 * count first, then medians over rounds of writes/s, p50, p99 and max (and the longest connection
 * set-up, which the measurement waits out: bench/load.ts), CPU milliseconds per committed write of
 * every process, the integrity check, and every round's figures. `--cpu-prof DIR` profiles the
 * Coco nodes, into DIR/<curve> when there are several curves (bench/profile-summary.ts; the load
 * windows are printed as `load_window_us`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ServiceCurve } from "../src/crypto/index.ts";
import { type CocoCluster, cocoPut, startCoco } from "./coco.ts";
import { perOperation, processCpuMs } from "./cpu.ts";
import { ETCD_MISSING, type EtcdCluster, etcdPut, etcdVersion, startEtcd } from "./etcd.ts";
import { type LoadOptions, type LoadResult, runLoad } from "./load.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64,256" },
    rounds: { type: "string", default: "3" },
    only: { type: "string" },
    "forwarded-connections": { type: "string", default: "64" },
    warmup: { type: "string", default: "2" },
    "cpu-prof": { type: "string" },
    curve: { type: "string", default: "secp384r1,secp256r1" },
  },
});
const curves = values.curve!.split(",");
if (
  curves.length === 0 ||
  new Set(curves).size !== curves.length ||
  !curves.every((c) => c === "secp384r1" || c === "secp256r1")
) {
  console.error("--curve must be a list of distinct curves, each secp384r1 or secp256r1");
  process.exit(2);
}
const warmupSeconds = Number(values.warmup);
const seconds = Number(values.seconds);
const levels = values.connections!.split(",").map(Number);
const rounds = Number(values.rounds);
const forwardedConnections = Number(values["forwarded-connections"]);
const isConnections = (c: number) => Number.isInteger(c) && c >= 1 && c <= 1024;
if (
  !(seconds > 0 && seconds <= 120) ||
  !(warmupSeconds >= 0 && warmupSeconds <= 30) ||
  !levels.every(isConnections) ||
  !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 10) ||
  !(forwardedConnections === 0 || isConnections(forwardedConnections))
) {
  console.error(
    "--seconds in (0, 120], --warmup in [0, 30], --connections a list of integers 1-1024, --rounds 1-10, --forwarded-connections 0-1024",
  );
  process.exit(2);
}
if (values.only !== undefined && values.only !== "coco" && values.only !== "etcd") {
  console.error("--only must be coco or etcd");
  process.exit(2);
}
const runEtcd = values.only !== "coco";
const runCoco = values.only !== "etcd";
if (runEtcd && !etcdVersion()) {
  console.error(`${ETCD_MISSING}; or run Coco alone with --only coco`);
  process.exit(2);
}
const value = "x".repeat(100);

interface Measured extends LoadResult {
  /** CPU ms per committed write: the node written to, the others, this process. */
  cpu_ms_per_write: { written_to?: number; others: Array<number | undefined>; load_generator: number };
  load_window_us: [number, number];
}

/** One load against one node of a cluster, with every process's CPU per committed write. */
async function measure(
  pids: number[],
  target: number,
  load: Omit<LoadOptions, "seconds">,
): Promise<Measured> {
  let before = pids.map(processCpuMs);
  let ownBefore = process.cpuUsage();
  let start = Number(process.hrtime.bigint() / 1000n);
  const result = await runLoad({
    ...load,
    seconds,
    warmupSeconds,
    measuring: () => {
      before = pids.map(processCpuMs);
      ownBefore = process.cpuUsage();
      start = Number(process.hrtime.bigint() / 1000n);
    },
  });
  const end = Number(process.hrtime.bigint() / 1000n);
  const own = process.cpuUsage(ownBefore);
  const after = pids.map(processCpuMs);
  const perWrite = pids.map((_, i) => perOperation(before[i], after[i], result.operations));
  return {
    ...result,
    cpu_ms_per_write: {
      written_to: perWrite[target],
      others: perWrite.filter((_, i) => i !== target),
      load_generator: Number(((own.user + own.system) / 1000 / Math.max(1, result.operations)).toFixed(3)),
    },
    load_window_us: [start, end],
  };
}

const median = (xs: Array<number | undefined>): number | null => {
  const ys = xs.filter((x): x is number => typeof x === "number").sort((a, b) => a - b);
  if (ys.length === 0) return null;
  const mid = Math.floor(ys.length / 2);
  return Number((ys.length % 2 ? ys[mid]! : (ys[mid - 1]! + ys[mid]!) / 2).toFixed(3));
};

function summarise(samples: Measured[]) {
  if (samples.length === 0) return null;
  const others = samples[0]!.cpu_ms_per_write.others.map((_, j) =>
    median(samples.map((s) => s.cpu_ms_per_write.others[j])),
  );
  return {
    writes_per_s: median(samples.map((s) => s.ops_per_sec)),
    p50_ms: median(samples.map((s) => s.latency_ms.p50)),
    p99_ms: median(samples.map((s) => s.latency_ms.p99)),
    max_ms: median(samples.map((s) => s.latency_ms.max)),
    // The connections' set-up (the measurement starts after it: bench/load.ts), longest round.
    connected_ms_max: Math.max(...samples.map((s) => s.connected_ms)),
    errors: samples.reduce((n, s) => n + s.errors, 0),
    cpu_ms_per_write: {
      written_to: median(samples.map((s) => s.cpu_ms_per_write.written_to)),
      others,
      load_generator: median(samples.map((s) => s.cpu_ms_per_write.load_generator)),
      servers_total: median(
        samples.map((s) =>
          [s.cpu_ms_per_write.written_to, ...s.cpu_ms_per_write.others].reduce<number>(
            (a, b) => a + (b ?? 0),
            0,
          ),
        ),
      ),
    },
    rounds: samples.map((s) => s.ops_per_sec),
  };
}

/** Waits until every node's commit point reaches `seqno` (Coco backups learn it a heartbeat later). */
async function cocoSettled(coco: CocoCluster, seqno: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const commits = await Promise.all(coco.nodes.map((_, n) => coco.commitSeqno(n).catch(() => 0)));
    if (commits.every((c) => c >= seqno)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Each node's count of acknowledged keys it does not hold (0 everywhere means the check passed). */
async function integrity(
  acked: Set<string>,
  nodes: number,
  keysOf: (node: number) => Promise<Set<string>>,
): Promise<{ acknowledged: number; missing_per_node: number[]; ok: boolean }> {
  const missing: number[] = [];
  for (let n = 0; n < nodes; n++) {
    const held = await keysOf(n);
    let absent = 0;
    for (const key of acked) if (!held.has(key)) absent++;
    missing.push(absent);
  }
  return { acknowledged: acked.size, missing_per_node: missing, ok: missing.every((m) => m === 0) };
}

const root = mkdtempSync(join(tmpdir(), "coco-bench-"));
let etcd: EtcdCluster | undefined;
/** One Coco service per curve, in the order given. */
const cocos = new Map<ServiceCurve, CocoCluster>();
try {
  const profileDir = values["cpu-prof"];
  if (runEtcd) etcd = await startEtcd(mkdtempSync(join(root, "etcd-")), 3);
  if (runCoco)
    for (const curve of curves as ServiceCurve[])
      cocos.set(
        curve,
        await startCoco({
          dir: join(root, `coco-${curve}`),
          nodes: 3,
          curve,
          ...(profileDir ? { profileDir: curves.length === 1 ? profileDir : join(profileDir, curve) } : {}),
        }),
      );
  const byLevel = () => new Map<number, Measured[]>(levels.map((c) => [c, []]));
  const samples = {
    etcd: byLevel(),
    coco: new Map([...cocos.keys()].map((curve) => [curve, byLevel()])),
    forwarded: [] as Measured[],
  };
  const ackedEtcd = new Set<string>();
  const ackedCoco = new Map([...cocos.keys()].map((curve) => [curve, new Set<string>()]));
  let nextId = 0;
  const roles: { coco_primary: Record<string, string>; etcd_leader?: string } = { coco_primary: {} };
  const runEtcdOnce = async (connections: number) => {
    if (!etcd) return;
    const leader = await etcd.leader();
    roles.etcd_leader = etcd.members[leader]!.name;
    const first = nextId;
    nextId += 10_000_000;
    samples.etcd.get(connections)!.push(
      await measure(
        etcd.members.map((m) => m.pid),
        leader,
        {
          origin: etcd.members[leader]!.url,
          tls: etcd.tls,
          connections,
          firstRequest: first,
          acknowledged: (i) => ackedEtcd.add(`records/${i}`),
          request: etcdPut(value),
        },
      ),
    );
  };
  const runCocoOnce = async (curve: ServiceCurve, connections: number, forwarded: boolean) => {
    const coco = cocos.get(curve)!;
    const primary = await coco.primary();
    roles.coco_primary[curve] = coco.nodes[primary]!.id;
    const target = forwarded ? (primary + 1) % coco.nodes.length : primary;
    const first = nextId;
    nextId += 10_000_000;
    const acked = ackedCoco.get(curve)!;
    const sample = await measure(
      coco.nodes.map((n) => n.pid),
      target,
      {
        origin: coco.nodes[target]!.url,
        tls: coco.tls,
        connections,
        firstRequest: first,
        acknowledged: (i) => acked.add(String(i)),
        request: cocoPut(value),
      },
    );
    if (forwarded) samples.forwarded.push(sample);
    else samples.coco.get(curve)!.get(connections)!.push(sample);
  };
  const systems: Array<(connections: number) => Promise<void>> = [
    ...(etcd ? [runEtcdOnce] : []),
    ...[...cocos.keys()].map((curve) => (connections: number) => runCocoOnce(curve, connections, false)),
  ];
  for (let round = 0; round < rounds; round++) {
    for (const connections of levels) {
      // Rotate who goes first: a machine that slows down over the run slows every system alike.
      for (let k = 0; k < systems.length; k++) await systems[(round + k) % systems.length]!(connections);
    }
    const first = [...cocos.keys()][0];
    if (forwardedConnections > 0 && first) await runCocoOnce(first, forwardedConnections, true);
  }
  const checks: Record<string, unknown> = {};
  for (const [curve, c] of cocos) {
    await cocoSettled(c, await c.commitSeqno(await c.primary()));
    checks[`coco_${curve}`] = await integrity(ackedCoco.get(curve)!, c.nodes.length, (n) => c.keys(n));
  }
  if (etcd) {
    const e = etcd;
    await new Promise((r) => setTimeout(r, 500));
    checks.etcd = await integrity(ackedEtcd, e.members.length, (n) => e.keys(n, "records/"));
  }
  const per = (byConnections: Map<number, Measured[]>) =>
    Object.fromEntries(levels.map((c) => [String(c), summarise(byConnections.get(c)!)]));
  const etc = per(samples.etcd);
  const coc = Object.fromEntries([...samples.coco].map(([curve, s]) => [curve, per(s)]));
  /** Coco/etcd of one figure, per curve and connection count. */
  const ratio = (figure: "writes_per_s" | "p99_ms") =>
    Object.fromEntries(
      Object.entries(coc).map(([curve, byLevel]) => [
        curve,
        Object.fromEntries(
          levels.map((c) => {
            const a = byLevel[String(c)]?.[figure];
            const b = etc[String(c)]?.[figure];
            return [String(c), a && b ? Number((a / b).toFixed(3)) : null];
          }),
        ),
      ]),
    );
  const report = {
    ratio_coco_over_etcd_writes_per_s: ratio("writes_per_s"),
    ratio_coco_over_etcd_p99: ratio("p99_ms"),
    benchmark:
      "3-node committed writes, 100-byte values under fresh keys, client mutual TLS, HTTP/1.1, closed loop",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, etcd: etcdVersion() },
    settings: {
      curves,
      seconds,
      warmup_seconds: warmupSeconds,
      connections: levels,
      rounds,
      forwarded_connections: forwardedConnections,
    },
    coco: {
      description:
        "3 Coco nodes (coco sandbox) per service curve; PUT /app/log/private?id=N to the primary, x-coco-wait: commit",
      ...coc,
    },
    etcd: { description: "3 etcd members; v3 JSON gateway PUT to the leader", ...etc },
    coco_forwarded: {
      description: `the same writes sent to a backup of the ${curves[0]} service, which forwards them to the primary`,
      ...summarise(samples.forwarded),
    },
    cpu_note:
      "cpu_ms_per_write: written_to = Coco primary / etcd leader (for coco_forwarded: the backup written to); others = the other two nodes",
    integrity: checks,
    roles,
    rounds_detail: {
      coco: Object.fromEntries(
        [...samples.coco].map(([curve, s]) => [curve, Object.fromEntries([...s].map(([c, m]) => [c, m]))]),
      ),
      etcd: Object.fromEntries([...samples.etcd].map(([c, s]) => [c, s])),
      coco_forwarded: samples.forwarded,
    },
  };
  console.log(JSON.stringify(report, null, 2));
  const failed = Object.values(checks).some((c) => !(c as { ok: boolean }).ok);
  if (failed) process.exitCode = 1;
} finally {
  for (const coco of cocos.values()) await coco.stop();
  await etcd?.stop();
  rmSync(root, { recursive: true, force: true });
}
