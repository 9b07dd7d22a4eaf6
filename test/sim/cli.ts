/**
 * Runs the deterministic simulator over many seeds and reports; replays one seed with a trace.
 *
 *   npm run sim -- --seeds 1000 --start 0 [--json]
 *   npm run sim -- --seed 173 --trace
 *   npm run sim -- --seeds 200 --bug countStaleVotes     (check that a known bug is caught)
 */
import { parseArgs } from "node:util";
import type { UnsafeBugs } from "../../src/consensus/index.ts";
import { runSeed, type SimResult } from "./world.ts";

const BUGS: ReadonlyArray<keyof UnsafeBugs> = [
  "countStaleVotes",
  "commitNonSignature",
  "commitEarlierView",
  "ignoreLogOnVote",
  "voteTwice",
];

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
    `${message}\nusage: sim [--seeds N] [--start S] [--json] | --seed N [--trace]  [--bug NAME]\n`,
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

function main(): void {
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
    },
    strict: true,
  });
  const unsafe: UnsafeBugs = {};
  for (const bug of values.bug ?? []) {
    if (!BUGS.includes(bug as keyof UnsafeBugs)) usage(`unknown --bug ${bug}; known: ${BUGS.join(", ")}`);
    unsafe[bug as keyof UnsafeBugs] = true;
  }
  const faultMs = integer("fault-ms", values["fault-ms"], 3000);
  const calmMs = integer("calm-ms", values["calm-ms"], 2000);
  const extra = [
    ...(values.bug ?? []).map((b) => `--bug ${b}`),
    ...(values["fault-ms"] ? [`--fault-ms ${faultMs}`] : []),
    ...(values["calm-ms"] ? [`--calm-ms ${calmMs}`] : []),
  ].join(" ");
  const replay = (seed: number): string => `npm run sim -- --seed ${seed} --trace${extra ? ` ${extra}` : ""}`;

  if (values.seed !== undefined) {
    const seed = integer("seed", values.seed, 0);
    const result = runSeed({ seed, trace: values.trace, unsafe, faultMs, calmMs });
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
  for (let seed = start; seed < start + seeds; seed++) {
    const result = runSeed({ seed, unsafe, faultMs, calmMs });
    summary.linearizability[result.linearizable] = (summary.linearizability[result.linearizable] ?? 0) + 1;
    for (const [key, value] of Object.entries(result.stats))
      summary.totals[key] = (summary.totals[key] ?? 0) + value;
    if (result.ok) {
      summary.passed++;
      continue;
    }
    summary.failed++;
    const { kind, message, atMs } = result.failure!;
    summary.failures.push({ seed, kind, message, atMs, replay: replay(seed) });
    if (!values.json)
      process.stdout.write(
        `seed ${seed} FAILED (${kind} at ${atMs} ms): ${firstLine(message)}\n  replay: ${replay(seed)}\n`,
      );
  }
  summary.elapsedMs = Math.round(performance.now() - began);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    const t = summary.totals;
    process.stdout.write(
      `${seeds} seeds (${start}..${start + seeds - 1}): ${summary.passed} passed, ${summary.failed} failed ` +
        `in ${(summary.elapsedMs / 1000).toFixed(1)} s\n` +
        `  committed entries ${t.committed ?? 0}, elections ${t.elections ?? 0}, client ops ok ${t.ops_ok ?? 0} ` +
        `(unknown ${t.ops_unknown ?? 0}), messages ${t.messages ?? 0}, snapshots installed ${t.snapshotsInstalled ?? 0}, ` +
        `torn writes ${t.tornWrites ?? 0}\n` +
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

main();
