/**
 * The long fuzz run: every parser target, N inputs each, from one seed.
 *
 *   npm run fuzz -- --runs 5000 --seed 7 [--target http] [--json]
 *
 * Prints, per target, inputs tried, how many were refused (with a clear error), the time, and the
 * first failure with its counterexample; exits 1 if any target failed. A failure replays with the
 * same --seed and --runs.
 */
import { parseArgs } from "node:util";
import { type FuzzReport, runTarget } from "./harness.ts";
import { allTargets } from "./targets.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "1000" },
    seed: { type: "string", default: "1" },
    target: { type: "string", multiple: true },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
  process.stderr.write("usage: fuzz [--runs N] [--seed S] [--target NAME ...] [--json]\n");
  process.exit(2);
}
const targets = await allTargets();
const wanted = values.target ?? targets.map((t) => t.name);
const unknown = wanted.filter((name) => !targets.some((t) => t.name === name));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown target ${unknown.join(", ")}; targets: ${targets.map((t) => t.name).join(", ")}\n`,
  );
  process.exit(2);
}
const reports: FuzzReport[] = [];
for (const target of targets.filter((t) => wanted.includes(t.name))) {
  const report = await runTarget(target, runs, seed);
  reports.push(report);
  if (!values.json) {
    const status = report.failure ? `FAILED\n  ${report.failure}` : "ok";
    process.stdout.write(
      `${report.target.padEnd(16)} ${String(report.runs).padStart(7)} inputs ${String(report.refused).padStart(7)} refused ${String(report.ms).padStart(7)} ms  ${status}\n`,
    );
  }
}
if (values.json) process.stdout.write(`${JSON.stringify({ runs, seed, reports }, null, 2)}\n`);
process.exit(reports.some((r) => r.failure) ? 1 : 0);
