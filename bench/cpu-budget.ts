/**
 * The CPU budget per committed write, stage by stage, from V8 CPU profiles of a load window
 * (`npm run bench -- --cpu-prof DIR`, `bench:replicated`/`bench:ab -- --cpu-prof DIR`):
 *
 *   npx tsx bench/cpu-budget.ts --window FROM:TO[,FROM:TO...] --ops N [--cpu-ms A,B,...] [--json] FILE...
 *   npx tsx bench/cpu-budget.ts --ab BENCH_AB_REPORT.json [--json]
 *
 * The second form takes every round of a `bench:ab -- --cpu-prof DIR` report (its windows, writes
 * and /proc CPU) and prints the primary and one backup of each run side by side.
 *
 * On a loaded machine a profile's busy samples include time the process was runnable but not
 * running, so its totals overstate CPU; `--cpu-ms` (each file's CPU ms per write from /proc, as
 * bench:replicated and bench:ab print) scales each file's stages to that total, keeping the
 * profile's shares.
 *
 * Each sample inside a window is charged to the first stage of STAGES whose pattern matches any
 * frame of its stack (`function@file`), so such a stage is inclusive of what it calls unless an
 * earlier one claims it (the signature transaction's own encoding counts as signatures).
 * Samples none of them claims go to the innermost frame matching one of LAYERS (the HTTP and
 * socket layers, which sit outside everything a request does), then to "other". The result is
 * microseconds of CPU per committed write (`--ops`: writes committed in the windows).
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import type { Profile, ProfileNode } from "./cpuprofile.ts";

/** Stage name and the frames that mark it, earlier stages first. */
export const STAGES: ReadonlyArray<readonly [string, RegExp]> = [
  ["signatures: sign (primary)", /^emitSignature@state\.ts$/],
  ["signatures: verify (backup)", /^checkSignedRoot@signatures\.ts$/],
  ["snapshots", /^(afterSignature|afterReplicated)@snapshots\.ts$|^encodeSnapshotAt@/],
  ["entry decode (backup)", /^decodeEntry@entry\.ts$|^readSignatureEntry@/],
  ["entry decrypt (backup)", /^decryptEntry@entry\.ts$/],
  ["entry encode and encrypt", /^encodeEntry@entry\.ts$/],
  [
    "commit evidence and Merkle append",
    /^(commitEvidence|commitEvidenceDigest|leafOf)@evidence\.ts$|^append@merkle\.ts$|^frameWriteSetDigest@|^transactionLeaf@|^root@merkle\.ts$/,
  ],
  ["KV commit / apply", /^(commitTx|applyEntry|appendEntry|applyReplicated)@state\.ts$|@store\.ts$|@tx\.ts$/],
  ["ledger write and fsync", /@files\.ts$|@io\.ts$/],
  [
    "replication: framing, send, receive, consensus",
    /@(channels|writer|connection|frame|envelope|peer|raft|primary|replica|consensus-start|validate|log|progress)\.ts$|@msgpackr$/,
  ],
  ["response (HTTP write, TLS encrypt)", /^writeAnswer@forwarding\.ts$|^Reply\.send@|@_http_outgoing$/],
  ["commit notification", /@commit-wait\.ts$|^markCommitted@|@commit-follower\.ts$|^waitForCommit@/],
  ["execution (app handler)", /^runHandler@app-dispatch\.ts$/],
  ["JSON body parse", /^onEnd@content-type-parser\.js$|^json@app-dispatch\.ts$|^parse$/],
  ["GC", /^\(garbage collector\)$/],
];

/** Outer layers, charged by the innermost matching frame. */
export const LAYERS: ReadonlyArray<readonly [string, RegExp]> = [
  [
    "routing and auth",
    /@(forwarding|app-dispatch|auth|auth-policies|router|server|rpc-port|port|endpoint|executor|answers|connection-limits)\.ts$|@fastify\.js$|@route\.js$|@hooks\.js$|@content-type-parser\.js$|@app\.ts$/,
  ],
  ["HTTP parse", /@_http_(common|server|incoming)$/],
  ["TLS read and socket", /^onStreamRead@|@readable$|^onWriteComplete@|@writable$|@net$|@_tls_wrap$/],
];
const OTHER = "other (timers, microtask plumbing, program)";

/** Busy CPU (us) per stage inside the windows. */
export function budget(file: string, windows: Array<[number, number]>): Map<string, number> {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (node: ProfileNode) => {
    const { functionName, url } = node.callFrame;
    return `${functionName || "(anonymous)"}@${url ? basename(url).replace(/^node:/, "") : ""}`.replace(
      /@$/,
      "",
    );
  };
  const stageOf = new Map<number, string | null>();
  const classify = (id: number): string | null => {
    const known = stageOf.get(id);
    if (known !== undefined) return known;
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at))
      frames.push(label(byId.get(at)!));
    let stage: string | null = OTHER;
    if (frames[0] === "(idle)") stage = null;
    else {
      const whole = STAGES.find(([, pattern]) => frames.some((f) => pattern.test(f)));
      if (whole) stage = whole[0];
      else {
        for (const frame of frames) {
          const layer = LAYERS.find(([, pattern]) => pattern.test(frame));
          if (layer) {
            stage = layer[0];
            break;
          }
        }
      }
    }
    stageOf.set(id, stage);
    return stage;
  };
  const out = new Map<string, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!windows.some(([from, to]) => at >= from && at <= to)) continue;
    const stage = classify(profile.samples[i]!);
    if (stage !== null) out.set(stage, (out.get(stage) ?? 0) + us);
  }
  return out;
}

interface Column {
  label: string;
  stages: Map<string, number>;
  ops: number;
}

/** A file's budget over `windows`, scaled to `cpuMs` per write when given. */
function column(label: string, file: string, windows: Array<[number, number]>, ops: number, cpuMs?: number) {
  const stages = budget(file, windows);
  if (cpuMs !== undefined) {
    const busy = [...stages.values()].reduce((a, b) => a + b, 0);
    for (const [name, us] of stages) stages.set(name, (us / busy) * cpuMs * 1000 * ops);
  }
  return { label, stages, ops };
}

function print(columns: Column[], json: boolean): void {
  const names = [...STAGES, ...LAYERS].map(([name]) => name).concat(OTHER);
  const per = (c: Column, us: number | undefined) => (us ?? 0) / c.ops;
  const total = (c: Column) =>
    per(
      c,
      [...c.stages.values()].reduce((a, b) => a + b, 0),
    );
  if (json) {
    const out = columns.map((c) => ({
      label: c.label,
      us_per_write: Object.fromEntries(names.map((n) => [n, Math.round(per(c, c.stages.get(n)))])),
      total_us_per_write: Math.round(total(c)),
    }));
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log("us of CPU per committed write");
  console.log(`${"stage".padEnd(48)}${columns.map((c) => c.label.slice(-22).padStart(24)).join("")}`);
  for (const name of names) {
    console.log(
      `${name.padEnd(48)}${columns.map((c) => per(c, c.stages.get(name)).toFixed(1).padStart(24)).join("")}`,
    );
  }
  console.log(`${"total".padEnd(48)}${columns.map((c) => total(c).toFixed(1).padStart(24)).join("")}`);
}

/**
 * Every round of a `bench:ab -- --cpu-prof DIR` report: the primary and one backup of each run,
 * scaled to the CPU per write /proc gave for them.
 */
function abColumns(report: string): Column[] {
  interface Round {
    writes_per_s: number;
    cpu_primary: number;
    cpu_backup: number;
    profile?: { dir: string; primary_pid: number; load_window_us: [number, number] };
  }
  const { rounds } = JSON.parse(readFileSync(report, "utf8")) as { rounds: Record<string, Round[]> };
  const columns: Column[] = [];
  for (const side of ["base", "head"]) {
    rounds[side]!.forEach((round, i) => {
      if (!round.profile)
        throw new Error(`${report}: ${side} round ${i} has no profile (run bench:ab with --cpu-prof)`);
      const { dir, primary_pid, load_window_us: window } = round.profile;
      const mains = readdirSync(dir).filter((f) => f.endsWith(".0.001.cpuprofile"));
      const primary = mains.find((f) => f.includes(`.${primary_pid}.`));
      const backup = mains.find((f) => !f.includes(`.${primary_pid}.`));
      if (!primary || !backup) throw new Error(`${dir}: no main-thread profiles of the primary and a backup`);
      const ops = Math.round((round.writes_per_s * (window[1] - window[0])) / 1e6);
      columns.push(column(`${side}-${i} primary`, join(dir, primary), [window], ops, round.cpu_primary));
      columns.push(column(`${side}-${i} backup`, join(dir, backup), [window], ops, round.cpu_backup));
    });
  }
  return columns;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      window: { type: "string" },
      ops: { type: "string" },
      "cpu-ms": { type: "string" },
      ab: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (values.ab) {
    print(abColumns(values.ab), values.json);
    process.exit(0);
  }
  const ops = Number(values.ops);
  const windows = (values.window ?? "")
    .split(",")
    .filter(Boolean)
    .map((w) => w.split(":").map(Number) as [number, number]);
  if (positionals.length === 0 || !(ops > 0) || windows.length === 0) {
    console.error(
      "usage: cpu-budget.ts --window FROM:TO[,FROM:TO...] --ops N [--cpu-ms A,B...] [--json] FILE...\n       cpu-budget.ts --ab BENCH_AB_REPORT.json [--json]",
    );
    process.exit(2);
  }
  const cpuMs = values["cpu-ms"]?.split(",").map(Number);
  if (cpuMs && (cpuMs.length !== positionals.length || !cpuMs.every((x) => x > 0))) {
    console.error("--cpu-ms needs one positive number per file");
    process.exit(2);
  }
  print(
    positionals.map((file, i) => column(basename(file), file, windows, ops, cpuMs?.[i])),
    values.json,
  );
}
