/**
 * `npm run nemesis -- --minutes N --seed S [--nodes 3|5] [--round-seconds 60]`: nemesis rounds on
 * namespaced processes for N minutes, round r using seed S + r (a round's seed reproduces its
 * fault schedule), then the totals. `--latency` instead measures commit throughput and p99
 * latency at 20 ms and 100 ms RTT (`--rtt 0,20,100` to choose) through the relays (latency.ts);
 * `--catch-up [--rounds 5] [--hold-seconds 6]` times a backup's catch-up after a two-way
 * partition (catch-up.ts). Exits 1 on any violation, 2 on
 * bad flags or where namespaces cannot be made.
 */
import { parseArgs } from "node:util";
import { measureCatchUp } from "./catch-up.ts";
import { namespacesUnavailable } from "./hosts.ts";
import { measureLatency } from "./latency.ts";
import { percentile, runRound } from "./run.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    seed: { type: "string", default: "1" },
    nodes: { type: "string", default: "3" },
    "round-seconds": { type: "string", default: "60" },
    latency: { type: "boolean", default: false },
    seconds: { type: "string", default: "20" },
    rtt: { type: "string", default: "20,100" },
    "catch-up": { type: "boolean", default: false },
    rounds: { type: "string", default: "5" },
    "hold-seconds": { type: "string", default: "6" },
  },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
const nodes = Number(values.nodes);
const roundSeconds = Number(values["round-seconds"]);
if (
  !(minutes > 0 && minutes <= 24 * 60) ||
  !Number.isSafeInteger(seed) ||
  !(nodes === 3 || nodes === 5) ||
  !(roundSeconds >= 10 && roundSeconds <= 3600)
) {
  console.error("--minutes in (0, 1440], --seed an integer, --nodes 3 or 5, --round-seconds 10 to 3600");
  process.exit(2);
}
const unavailable = namespacesUnavailable();
if (unavailable) {
  console.error(`cannot run the nemesis: ${unavailable}`);
  process.exit(2);
}

if (values.latency) {
  const seconds = Number(values.seconds);
  for (const rttMs of values.rtt.split(",").map(Number)) {
    const r = await measureLatency({ rttMs, seconds, nodes });
    console.log(
      `RTT ${rttMs} ms (${nodes} nodes, ${r.clients} clients, ${seconds} s): ${r.throughput.toFixed(0)} commits/s, ` +
        `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms (${r.commits} commits, ${r.errors} errors, ${r.relayed} relayed connections)`,
    );
  }
  process.exit(0);
}

if (values["catch-up"]) {
  const r = await measureCatchUp({
    rounds: Number(values.rounds),
    holdMs: Number(values["hold-seconds"]) * 1000,
  });
  for (const [i, s] of r.sockets.entries())
    console.log(`round ${i}, the cut-off node's sockets before the heal:\n${s}`);
  const finite = r.times.filter(Number.isFinite);
  console.log(
    `catch-up after a ${values["hold-seconds"]} s two-way partition: ${r.times.map((t) => Math.round(t)).join(", ")} ms ` +
      `(median ${finite.length ? percentile(finite, 50).toFixed(0) : "-"} ms, max ${Math.round(Math.max(...r.times))} ms)`,
  );
  process.exit(0);
}

const deadline = Date.now() + minutes * 60_000;
const totals = { rounds: 0, faults: 0, operations: 0, violations: 0, unknown: 0, records: 0 };
const failovers: number[] = [];
const catchUps: number[] = [];
const kinds: Record<string, number> = {};
for (let round = 0; Date.now() < deadline; round++) {
  const seconds = Math.max(10, Math.min(roundSeconds, Math.floor((deadline - Date.now()) / 1000)));
  const roundSeed = seed + round;
  console.log(`round ${round}: seed ${roundSeed}, ${seconds} s of faults`);
  const r = await runRound({ seed: roundSeed, seconds, nodes, log: (line) => console.log(`  ${line}`) });
  totals.rounds++;
  totals.faults += r.faults;
  totals.operations += r.verdict.operations;
  totals.violations += r.verdict.violations.length;
  totals.unknown += r.verdict.unknown;
  totals.records += r.stats.records;
  failovers.push(...r.figures.failovers);
  catchUps.push(...r.figures.catchUps);
  for (const [k, n] of Object.entries(r.figures.faults)) kinds[k] = (kinds[k] ?? 0) + n;
  for (const v of r.verdict.violations) console.log(`  VIOLATION: ${v}`);
  console.log(
    `  round ${round}: ${r.faults} faults, ${r.verdict.operations} operations, ${r.verdict.violations.length} violations`,
  );
}
const ms = (xs: number[]) =>
  xs.length === 0
    ? "none"
    : `median ${percentile(xs, 50).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms (${xs.length})`;
console.log(`\nseed ${seed}, ${minutes} min, ${nodes} nodes`);
console.log(`rounds ${totals.rounds}, faults ${totals.faults} ${JSON.stringify(kinds)}`);
console.log(`operations checked ${totals.operations}, records acknowledged ${totals.records}`);
console.log(`violations ${totals.violations}, registers without a verdict ${totals.unknown}`);
console.log(`new primary after an isolated primary: ${ms(failovers)}`);
console.log(`partitioned or restarted node caught up: ${ms(catchUps)}`);
process.exit(totals.violations > 0 ? 1 : 0);
