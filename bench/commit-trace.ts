/**
 * The commit round's time line from a traced run (src/node/commit-trace.ts):
 *
 *   COCO_COMMIT_TRACE=DIR npm run -s bench -- --only coco --connections 64 --rounds 1 ...
 *   npx tsx bench/commit-trace.ts DIR [--skip-ms 2000] [--json]
 *
 * Finds the primary (the node that emitted signatures), keeps the signatures emitted under load
 * (runs of signatures less than a second apart, without each run's first `--skip-ms`), and prints,
 * per signature, the median and 90th percentile of: writes covered, their wait before the
 * signature, the gap since the previous signature, emission to commit on the primary and its
 * parts (AppendEntries handed to the channel, received on the backup, durable there, the
 * acknowledgement sent and received; the primary's own durable write), and each node's event-loop
 * delay. Times are wall-clock milliseconds on one machine. `--in-flight N` keeps only the
 * signatures emitted while N others were in flight.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "skip-ms": { type: "string", default: "2000" },
    "in-flight": { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const dir = positionals[0];
if (!dir) {
  console.error("usage: bench/commit-trace.ts DIR [--skip-ms 2000] [--json]");
  process.exit(2);
}
const skipMs = Number(values["skip-ms"]);

type Event = { k: string; t: number; s?: number; [key: string]: unknown };
const nodes = new Map<string, Event[]>();
for (const file of readdirSync(dir).filter((f) => f.endsWith(".jsonl"))) {
  const events = readFileSync(join(dir, file), "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Event);
  nodes.set(file.replace(/\.jsonl$/, ""), events);
}
const sigCount = (id: string) => nodes.get(id)!.filter((e) => e.k === "sig").length;
const primary = [...nodes.keys()].sort((a, b) => sigCount(b) - sigCount(a))[0];
if (!primary) throw new Error(`no traces in ${dir}`);
const backups = [...nodes.keys()].filter((id) => id !== primary);

/** First time of event `kind` for each signature seqno on `node` (optionally from/to a peer). */
function times(node: string, kind: string, peer?: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of nodes.get(node)!) {
    if (e.k !== kind || e.s === undefined) continue;
    if (peer !== undefined && e.to !== peer && e.from !== peer) continue;
    if (!out.has(e.s)) out.set(e.s, e.t);
  }
  return out;
}

const sigs = nodes.get(primary)!.filter((e) => e.k === "sig") as Array<
  Event & { s: number; n: number; wait: number; waitMax: number; inFlight: number; busyMs?: number }
>;
// Under load: runs of signatures less than GAP_MS apart, each run's first skipMs left out.
const GAP_MS = 1000;
const kept: Array<(typeof sigs)[number] & { gap: number }> = [];
let runStart = 0;
for (let i = 0; i < sigs.length; i++) {
  const gap = i === 0 ? Number.POSITIVE_INFINITY : sigs[i]!.t - sigs[i - 1]!.t;
  if (gap > GAP_MS) runStart = sigs[i]!.t;
  const next = sigs[i + 1];
  if (gap <= GAP_MS && next !== undefined && next.t - sigs[i]!.t <= GAP_MS && sigs[i]!.t - runStart >= skipMs)
    if (values["in-flight"] === undefined || sigs[i]!.inFlight === Number(values["in-flight"]))
      kept.push({ ...sigs[i]!, gap });
}

const commit = times(primary, "commit");
const pDurable = times(primary, "durable");
const rows: Record<string, number[]> = {};
const add = (name: string, value: number | undefined) => {
  if (value === undefined || Number.isNaN(value)) return;
  const list = rows[name] ?? [];
  list.push(value);
  rows[name] = list;
};
const perBackup = backups.map((b) => ({
  id: b,
  send: times(primary, "send", b),
  recv: times(b, "recv"),
  durable: times(b, "durable"),
  acked: times(b, "acked"),
  ack: times(primary, "ack", b),
}));
let writes = 0;
let weightedWait = 0;
let appendToCommit = 0;
let appendToCommitWrites = 0;
for (const sig of kept) {
  const t0 = sig.t;
  writes += sig.n;
  weightedWait += sig.wait * sig.n;
  add("writes per signature", sig.n);
  add("signatures in flight at emission", sig.inFlight);
  add("making the signature transaction (event loop held)", sig.busyMs);
  add("gap since the previous signature", sig.gap);
  add("writes' mean wait before the signature", sig.wait);
  add("writes' longest wait before the signature", sig.waitMax);
  add("emission -> commit (primary)", (commit.get(sig.s) ?? Number.NaN) - t0);
  if (sig.inFlight > 0)
    add("  emission -> commit, emitted with another in flight", (commit.get(sig.s) ?? Number.NaN) - t0);
  else add("  emission -> commit, emitted with none in flight", (commit.get(sig.s) ?? Number.NaN) - t0);
  const committedAt = commit.get(sig.s);
  if (committedAt !== undefined) {
    appendToCommit += (sig.wait + committedAt - t0) * sig.n;
    appendToCommitWrites += sig.n;
  }
  add("emission -> durable on the primary", (pDurable.get(sig.s) ?? Number.NaN) - t0);
  const acks: number[] = [];
  for (const b of perBackup) {
    const send = b.send.get(sig.s);
    const recv = b.recv.get(sig.s);
    const durable = b.durable.get(sig.s);
    const acked = b.acked.get(sig.s);
    const ack = b.ack.get(sig.s);
    if (send === undefined || recv === undefined || durable === undefined || acked === undefined) continue;
    add("emission -> AppendEntries handed to the channel", send - t0);
    add("  handed to the channel -> received on the backup", recv - send);
    // The ack goes out from the replica's durable listener, which runs before the trace's.
    add(
      "  received -> durable there, acknowledgement handed to the channel",
      Math.max(acked, durable) - recv,
    );
    if (ack !== undefined) {
      add("  acknowledgement sent -> received on the primary", ack - acked);
      add("emission -> acknowledgement received (each backup)", ack - t0);
      acks.push(ack);
    }
  }
  acks.sort((a, b) => a - b);
  if (acks.length > 0) {
    add("emission -> first acknowledgement (majority with the primary)", acks[0]! - t0);
    const c = commit.get(sig.s);
    const d = pDurable.get(sig.s);
    if (c !== undefined && d !== undefined) add("majority durable -> commit seen", c - Math.max(acks[0]!, d));
  }
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const spanMs = kept.length > 1 ? kept.at(-1)!.t - kept[0]!.t : 0;
const table = Object.entries(rows).map(([name, values]) => ({
  name,
  median: Number(pct(values, 50).toFixed(2)),
  p90: Number(pct(values, 90).toFixed(2)),
  mean: Number((values.reduce((a, b) => a + b, 0) / values.length).toFixed(2)),
  count: values.length,
}));
const eld = [...nodes.entries()].map(([id, events]) => {
  const secs = events.filter((e) => e.k === "eld") as Array<
    Event & { mean: number; p99: number; max: number }
  >;
  return {
    node: id === primary ? `${id} (primary)` : id,
    seconds: secs.length,
    mean_ms_median: Number(
      pct(
        secs.map((s) => s.mean),
        50,
      ).toFixed(2),
    ),
    p99_ms_median: Number(
      pct(
        secs.map((s) => s.p99),
        50,
      ).toFixed(2),
    ),
    max_ms_max: Number(Math.max(...secs.map((s) => s.max)).toFixed(2)),
  };
});
const summary = {
  primary,
  signatures: kept.length,
  span_s: Number((spanMs / 1000).toFixed(2)),
  signatures_per_s: Number((kept.length / (spanMs / 1000)).toFixed(1)),
  writes_per_s_signed: Number((writes / (spanMs / 1000)).toFixed(0)),
  writes_mean_wait_ms: Number((weightedWait / Math.max(1, writes)).toFixed(2)),
  writes_mean_append_to_commit_ms: Number((appendToCommit / Math.max(1, appendToCommitWrites)).toFixed(2)),
};
if (values.json) {
  console.log(JSON.stringify({ summary, table, eld }, null, 2));
} else {
  console.log(summary);
  console.table(table);
  console.table(eld);
}
