/**
 * Runs the deterministic simulator over many seeds and reports; replays one seed with a trace.
 *
 *   npm run sim -- --seeds 1000 --start 0 [--json] [--jobs N]
 *   npm run sim -- --seed 173 --trace
 *   npm run sim -- --seeds 200 --bug countStaleVotes     (check that a known bug is caught)
 *   npm run sim -- --seeds 50 --workload stale-reads --bug readWithoutQuorum
 */
import { fork } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { UnsafeBugs } from "../../src/consensus/index.ts";
import type { NodeBugs } from "./node-env.ts";
import { WORKLOADS, type Workload } from "./stale-reads.ts";
import { runSeed, type SimOptions, type SimResult } from "./world.ts";

const BUGS: ReadonlyArray<keyof UnsafeBugs> = [
  "countStaleVotes",
  "commitNonSignature",
  "commitEarlierView",
  "ignoreLogOnVote",
  "voteTwice",
  "longerLogWins",
  "readWithoutQuorum",
];
const NODE_BUGS: ReadonlyArray<keyof NodeBugs> = ["readUncommitted", "skipRollback"];

interface Summary {
  start: number;
  seeds: number;
  passed: number;
  failed: number;
  failures: Array<{ seed: number; kind: string; message: string; atMs: number; replay: string }>;
  linearizability: Record<string, number>;
  totals: Record<string, number>;
  elapsedMs: number;
}

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: sim [--seeds N] [--start S] [--json] [--jobs N] | --seed N [--trace]  [--bug NAME]\n`,
  );
  process.exitCode = 2;
  throw new Error("bad arguments");
}

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

/**
 * Runs seeds `first`..`first + count - 1` in `jobs` child processes (in this one for one job)
 * and hands the results over in seed order.
 */
async function runSeeds(
  first: number,
  count: number,
  jobs: number,
  options: Omit<SimOptions, "seed">,
  onResult: (result: SimResult) => void,
): Promise<void> {
  if (jobs <= 1 || count <= 1) {
    for (let seed = first; seed < first + count; seed++) onResult(runSeed({ ...options, seed }));
    return;
  }
  const done = new Map<number, SimResult>();
  let next = first;
  let emitted = first;
  const script = fileURLToPath(new URL("./worker.ts", import.meta.url));
  const workers = Array.from({ length: Math.min(jobs, count) }, () =>
    fork(script, [], { execArgv: ["--import", "tsx"], serialization: "advanced" }),
  );
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          const feed = (): void => {
            if (next >= first + count) {
              worker.send("done");
              return;
            }
            worker.send({ ...options, seed: next++ });
          };
          worker.on("message", (message) => {
            const result = message as SimResult;
            done.set(result.seed, result);
            while (done.has(emitted)) {
              onResult(done.get(emitted)!);
              done.delete(emitted++);
            }
            feed();
          });
          worker.on("error", reject);
          worker.on("exit", (code) =>
            code === 0 ? resolve() : reject(new Error(`a simulator process exited with code ${code}`)),
          );
          feed();
        }),
    ),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string" },
      start: { type: "string" },
      seed: { type: "string" },
      trace: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      bug: { type: "string", multiple: true },
      "fault-ms": { type: "string" },
      "calm-ms": { type: "string" },
      jobs: { type: "string" },
      workload: { type: "string" },
    },
    strict: true,
  });
  const unsafe: UnsafeBugs = {};
  const nodeBugs: NodeBugs = {};
  for (const bug of values.bug ?? []) {
    if (BUGS.includes(bug as keyof UnsafeBugs)) unsafe[bug as keyof UnsafeBugs] = true;
    else if (NODE_BUGS.includes(bug as keyof NodeBugs)) nodeBugs[bug as keyof NodeBugs] = true;
    else usage(`unknown --bug ${bug}; known: ${[...BUGS, ...NODE_BUGS].join(", ")}`);
  }
  const workload = (values.workload ?? "mixed") as Workload;
  if (!WORKLOADS.includes(workload))
    usage(`unknown --workload ${values.workload}; known: ${WORKLOADS.join(", ")}`);
  const faultMs = integer("fault-ms", values["fault-ms"], 3000);
  const calmMs = integer("calm-ms", values["calm-ms"], 2000);
  const extra = [
    ...(values.bug ?? []).map((b) => `--bug ${b}`),
    ...(values.workload ? [`--workload ${workload}`] : []),
    ...(values["fault-ms"] ? [`--fault-ms ${faultMs}`] : []),
    ...(values["calm-ms"] ? [`--calm-ms ${calmMs}`] : []),
  ].join(" ");
  const replay = (seed: number): string => `npm run sim -- --seed ${seed} --trace${extra ? ` ${extra}` : ""}`;

  if (values.seed !== undefined) {
    const seed = integer("seed", values.seed, 0);
    const result = runSeed({ seed, trace: values.trace, unsafe, nodeBugs, faultMs, calmMs, workload });
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ...result, replay: replay(seed) }, null, 2)}\n`);
    } else {
      if (values.trace) process.stdout.write(`${result.trace.join("\n")}\n\n`);
      process.stdout.write(describe(result, replay(seed)));
    }
    // exitCode, not exit(): a large trace written to a pipe must be flushed first.
    process.exitCode = result.ok ? 0 : 1;
    return;
  }

  const start = integer("start", values.start, 0);
  const seeds = integer("seeds", values.seeds, 100);
  const jobs = Math.max(1, integer("jobs", values.jobs, availableParallelism()));
  const began = performance.now();
  const summary: Summary = {
    start,
    seeds,
    passed: 0,
    failed: 0,
    failures: [],
    linearizability: {},
    totals: {},
    elapsedMs: 0,
  };
  await runSeeds(start, seeds, jobs, { unsafe, nodeBugs, faultMs, calmMs, workload }, (result) => {
    const seed = result.seed;
    summary.linearizability[result.linearizable] = (summary.linearizability[result.linearizable] ?? 0) + 1;
    for (const [key, value] of Object.entries(result.stats))
      summary.totals[key] = (summary.totals[key] ?? 0) + value;
    if (result.ok) {
      summary.passed++;
      return;
    }
    summary.failed++;
    const { kind, message, atMs } = result.failure!;
    summary.failures.push({ seed, kind, message, atMs, replay: replay(seed) });
    if (!values.json)
      process.stdout.write(
        `seed ${seed} FAILED (${kind} at ${atMs} ms): ${firstLine(message)}\n  replay: ${replay(seed)}\n`,
      );
  });
  summary.elapsedMs = Math.round(performance.now() - began);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    const t = summary.totals;
    process.stdout.write(
      `${seeds} seeds (${start}..${start + seeds - 1}): ${summary.passed} passed, ${summary.failed} failed ` +
        `in ${(summary.elapsedMs / 1000).toFixed(1)} s with ${jobs} job${jobs === 1 ? "" : "s"}\n` +
        `  committed entries ${t.committed ?? 0}, elections ${t.elections ?? 0}, client ops ok ${t.ops_ok ?? 0} ` +
        `(unknown ${t.ops_unknown ?? 0}), messages ${t.messages ?? 0}, snapshots installed ${t.snapshotsInstalled ?? 0}, ` +
        `torn writes ${t.tornWrites ?? 0}\n` +
        `  engine: signatures ${t.signatures ?? 0}, receipts verified ${t.receiptsVerified ?? 0} ` +
        `(rebuilt from the ledger ${t.receiptsRebuilt ?? 0}), ` +
        `ledger replays ${t.replays ?? 0}, snapshots taken ${t.snapshotsTaken ?? 0}\n` +
        `  linearizability: ${Object.entries(summary.linearizability)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}\n`,
    );
  }
  process.exitCode = summary.failed === 0 ? 0 : 1;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}

function describe(result: SimResult, replay: string): string {
  const lines = [`seed ${result.seed}: ${result.ok ? "ok" : "FAILED"}`];
  if (result.failure) {
    lines.push(`  ${result.failure.kind} at ${result.failure.atMs} ms: ${result.failure.message}`);
    lines.push(`  replay: ${replay}`);
  }
  lines.push(`  linearizability: ${result.linearizable}`);
  lines.push(`  scenario: ${JSON.stringify(result.scenario)}`);
  lines.push(`  stats: ${JSON.stringify(result.stats)}`);
  return `${lines.join("\n")}\n`;
}

await main();
