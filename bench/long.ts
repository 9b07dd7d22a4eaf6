/**
 * Cost as the ledger grows: commits `--transactions` writes on a 3-node Coco network and records,
 * for every `--every` of them, the writes/s and each node's resident memory (RSS) and CPU per
 * write, so a cost that grows with the ledger shows up as a trend.
 *
 *   npm run -s bench:long -- [--transactions 1000000] [--every 100000] [--connections 64] [--keys 10000]
 *                            [--curve secp384r1|secp256r1] [--heap-snapshots DIR] [--memory-log DIR]
 *
 * The writes cycle over `--keys` ids (PUT /app/log/private?id=i mod keys, answered once
 * committed), so the store stays the same size while the ledger grows by one entry per write:
 * this measures what the ledger costs as it grows, not a growing state. Progress goes to stderr
 * as one JSON line per segment; the report goes to stdout, with the verdict issue 17 asks for:
 * flat when every later segment's writes/s is at least 90% of the first segment's and each
 * node's RSS at most 110% of its RSS after the first segment. CPU per write is reported beside
 * it (on a shared machine wall-clock throughput is noisy; CPU per write is not).
 *
 * `--heap-snapshots DIR` writes a V8 heap snapshot of the primary into DIR after each segment
 * (between segments, while no load runs), to find what it keeps per write: compare two with
 * bench/heap-diff.ts. Taking one pauses the primary for seconds, so the figures of a run with it
 * are for memory, not throughput. `--memory-log DIR` has every node append its memory figures
 * (process.memoryUsage, V8's heap spaces, the kernel's RSS split) to DIR/memory-<pid>.jsonl
 * every 5 s (bench/memory-probe.mjs), to tell JS heap growth from native growth.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { ServiceCurve } from "../src/crypto/index.ts";
import { cocoPut, startCoco } from "./coco.ts";
import { perOperation, processCpuMs } from "./cpu.ts";
import { runLoad } from "./load.ts";

const { values } = parseArgs({
  options: {
    transactions: { type: "string", default: "1000000" },
    every: { type: "string", default: "100000" },
    connections: { type: "string", default: "64" },
    keys: { type: "string", default: "10000" },
    "keep-dir": { type: "boolean", default: false },
    curve: { type: "string", default: "secp384r1" },
    "heap-snapshots": { type: "string" },
    "memory-log": { type: "string" },
  },
});
if (values.curve !== "secp384r1" && values.curve !== "secp256r1") {
  console.error("--curve must be secp384r1 or secp256r1");
  process.exit(2);
}
const curve = values.curve as ServiceCurve;
const total = Number(values.transactions);
const every = Number(values.every);
const connections = Number(values.connections);
const keys = Number(values.keys);
const int = (x: number, lo: number, hi: number) => Number.isInteger(x) && x >= lo && x <= hi;
if (
  !int(total, 1, 20_000_000) ||
  !int(every, 1, total) ||
  !int(connections, 1, 1024) ||
  !int(keys, 1, 10_000_000)
) {
  console.error("--transactions 1-20M, --every 1..transactions, --connections 1-1024, --keys 1-10M");
  process.exit(2);
}

/** Resident set size of a process in MB, from /proc. */
function rssMb(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("VmRSS:"));
    return line ? Number((Number(line.split(/\s+/)[1]) / 1024).toFixed(1)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Signals `pid` (started with --heapsnapshot-signal=SIGUSR2) to write a heap snapshot into `dir`
 * and waits until the new file stops growing; returns its path.
 */
async function heapSnapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, "SIGUSR2");
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (let waited = 0; waited < 600_000; waited += 1000) {
    await sleep(1000);
    const fresh = readdirSync(dir).find((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
    if (fresh === undefined) continue;
    const path = join(dir, fresh);
    let size = -1;
    // V8 writes the file in one go from the node's main thread: done once its size holds still.
    while (statSync(path).size !== size) {
      size = statSync(path).size;
      await sleep(2000);
    }
    return path;
  }
  throw new Error(`no heap snapshot from ${pid} in ${dir} after 10 minutes`);
}

/** Issue 17: later segments within 10% of the first. */
const TOLERANCE = 0.1;

/**
 * Flat or not, against the first segment: the worst later writes/s ratio, the worst RSS ratio of
 * any node, and (reported, not judged) the worst CPU per write ratio of any node.
 */
function flatVerdict(segments: Array<Record<string, unknown>>) {
  const first = segments[0]!;
  const later = segments.length > 1 ? segments.slice(1) : segments;
  // reduce passes (accumulator, value, index, array): pick must see only the first two.
  const worst = (values: number[], pick: (a: number, b: number) => number, start: number) =>
    Number(values.reduce((a, b) => pick(a, b), start).toFixed(3));
  const perNode = (s: Record<string, unknown>, field: string) => s[field] as Array<number | undefined>;
  const ratios = (field: string) =>
    later.flatMap((s) =>
      perNode(s, field).flatMap((v, i) => {
        const base = perNode(first, field)[i];
        return typeof v === "number" && typeof base === "number" && base > 0 ? [v / base] : [];
      }),
    );
  const throughput = later.map((s) => (s.writes_per_s as number) / (first.writes_per_s as number));
  const worstThroughput = worst(throughput, Math.min, Number.POSITIVE_INFINITY);
  const worstRss = worst(ratios("rss_mb"), Math.max, 0);
  const worstCpu = worst(ratios("cpu_ms_per_write"), Math.max, 0);
  return {
    rule: `every later segment: writes/s >= ${1 - TOLERANCE}x and each node's RSS <= ${1 + TOLERANCE}x the first segment's`,
    flat: worstThroughput >= 1 - TOLERANCE && worstRss <= 1 + TOLERANCE,
    worst_writes_per_s_ratio: worstThroughput,
    worst_rss_ratio: worstRss,
    worst_cpu_ratio: worstCpu,
  };
}

const root = mkdtempSync(join(tmpdir(), "coco-long-"));
const heapDir = values["heap-snapshots"] ? resolve(values["heap-snapshots"]) : undefined;
if (heapDir) mkdirSync(heapDir, { recursive: true });
const memoryDir = values["memory-log"] ? resolve(values["memory-log"]) : undefined;
const nodeArgs = [
  ...(heapDir ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`] : []),
  ...(memoryDir ? ["--import", fileURLToPath(new URL("./memory-probe.mjs", import.meta.url))] : []),
];
if (memoryDir) {
  mkdirSync(memoryDir, { recursive: true });
  // The node processes inherit this environment: the probe writes where it says.
  process.env.MEMORY_PROBE_DIR = memoryDir;
}
const coco = await startCoco({
  dir: join(root, "coco"),
  nodes: 3,
  curve,
  ...(nodeArgs.length > 0 ? { nodeArgs } : {}),
});
try {
  const pids = coco.nodes.map((n) => n.pid);
  const primary = await coco.primary();
  const value = "x".repeat(100);
  const put = cocoPut(value);
  const segments: Array<Record<string, unknown>> = [];
  for (let done = 0; done < total; ) {
    const count = Math.min(every, total - done);
    const before = pids.map(processCpuMs);
    // A segment ends after `count` requests were sent (answered ones are counted as committed).
    const result = await runLoad({
      origin: coco.nodes[primary]!.url,
      tls: coco.tls,
      connections,
      seconds: 24 * 3600,
      firstRequest: done,
      maxRequests: count,
      request: (i) => put(i % keys),
    });
    const after = pids.map(processCpuMs);
    done += count;
    const segment = {
      transactions: done,
      writes_per_s: result.ops_per_sec,
      errors: result.errors,
      p50_ms: result.latency_ms.p50,
      p99_ms: result.latency_ms.p99,
      rss_mb: pids.map(rssMb),
      cpu_ms_per_write: pids.map((_, i) => perOperation(before[i], after[i], result.operations)),
    };
    const heap = heapDir ? { heap_snapshot: await heapSnapshot(pids[primary]!, heapDir) } : {};
    segments.push({ ...segment, ...heap });
    console.error(JSON.stringify({ ...segment, ...heap }));
  }
  const first = segments[0]!;
  const last = segments.at(-1)!;
  const ratio = (a: unknown, b: unknown) =>
    typeof a === "number" && typeof b === "number" && b > 0 ? Number((a / b).toFixed(3)) : null;
  const verdict = flatVerdict(segments);
  console.log(
    JSON.stringify(
      {
        benchmark: "3-node Coco, committed writes over a growing ledger",
        machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
        settings: { curve, transactions: total, every, connections, keys },
        primary: coco.nodes[primary]!.id,
        last_over_first: {
          writes_per_s: ratio(last.writes_per_s, first.writes_per_s),
          rss: (last.rss_mb as number[]).map((r, i) => ratio(r, (first.rss_mb as number[])[i])),
          cpu_ms_per_write: (last.cpu_ms_per_write as number[]).map((c, i) =>
            ratio(c, (first.cpu_ms_per_write as number[])[i]),
          ),
        },
        verdict,
        segments,
      },
      null,
      2,
    ),
  );
  console.error(
    `${verdict.flat ? "FLAT" : "NOT FLAT"}: worst writes/s ${verdict.worst_writes_per_s_ratio}x the first segment's ` +
      `(>= ${1 - TOLERANCE} wanted), worst RSS ${verdict.worst_rss_ratio}x (<= ${1 + TOLERANCE} wanted), ` +
      `worst CPU per write ${verdict.worst_cpu_ratio}x`,
  );
} finally {
  await coco.stop();
  if (!values["keep-dir"]) rmSync(root, { recursive: true, force: true });
}
