/**
 * Coco against an earlier Coco: the replicated write benchmark run alternately on this tree and
 * on a git revision (each round runs both, so machine noise falls on both alike), reporting the
 * median writes/s, p99 and CPU per write of each and their ratio. For checking that a change
 * costs nothing:
 *
 *   npm run -s bench:ab -- --base <git revision> [--rounds 3] [--seconds 10] [--connections 64]
 *                          [--retries 1] [--cpu-prof DIR]
 *
 * `--retries N` runs a round again (up to N times) when its network fails to start, as it can on
 * a loaded machine. `--cpu-prof DIR` profiles every node of every run into DIR/base-<round> and
 * DIR/head-<round> (bench:replicated's flag), for `bench/profile-summary.ts`; the report then
 * names each run's primary process and load window.
 *
 * The revision is checked out into a temporary git worktree that uses this tree's node_modules,
 * and runs this tree's benchmark harness (bench/replicated.ts and what it imports), so that only
 * the system under test differs. Each run also reports how many transactions one signature
 * covered in the primary's ledger, a figure the machine's load does not distort.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    retries: { type: "string", default: "1" },
    "cpu-prof": { type: "string" },
  },
});
const rounds = Number(values.rounds);
const retries = Number(values.retries);
if (
  !values.base ||
  !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20) ||
  !(Number.isInteger(retries) && retries >= 0 && retries <= 5)
) {
  console.error(
    "usage: bench:ab -- --base <git revision> [--rounds 1-20] [--seconds S] [--connections C] [--retries 0-5] [--cpu-prof DIR]",
  );
  process.exit(2);
}
const profileRoot = values["cpu-prof"] ? resolve(values["cpu-prof"]) : undefined;
const here = resolve(import.meta.dirname, "..");
const base = execFileSync("git", ["rev-parse", "--verify", `${values.base}^{commit}`], {
  cwd: here,
  encoding: "utf8",
}).trim();
const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: here, encoding: "utf8" }).trim();

interface Sample {
  writes_per_s: number;
  p99_ms: number;
  cpu_primary: number | undefined;
  cpu_backup: number | undefined;
  /** Transactions per signature transaction in the primary's ledger during the run. */
  tx_per_signature: number | undefined;
  /** With --cpu-prof: where the profiles are, which process was the primary, the load's window. */
  profile?: { dir: string; primary_pid: number; load_window_us: number[] };
}

function runOnce(tree: string, profileDir?: string): Sample {
  for (let attempt = 0; ; attempt++) {
    try {
      return runBench(tree, profileDir);
    } catch (e) {
      if (attempt >= retries) throw e;
      console.error(`bench:ab: a run in ${tree} failed (${(e as Error).message.split("\n")[0]}); retrying`);
    }
  }
}

function runBench(tree: string, profileDir?: string): Sample {
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const out = execFileSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "bench/replicated.ts",
      "--only",
      "coco",
      "--seconds",
      values.seconds!,
      "--connections",
      values.connections!,
      ...(profileDir ? ["--cpu-prof", profileDir] : []),
    ],
    { cwd: tree, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 },
  );
  const coco = JSON.parse(out).coco;
  const backups = (coco.cpu_ms_per_write?.backups ?? []).filter((x: unknown) => typeof x === "number");
  return {
    writes_per_s: coco.ops_per_sec,
    p99_ms: coco.latency_ms?.p99,
    cpu_primary: coco.cpu_ms_per_write?.primary,
    tx_per_signature: coco.ledger?.transactions_per_signature ?? undefined,
    cpu_backup: backups.length
      ? backups.reduce((a: number, b: number) => a + b, 0) / backups.length
      : undefined,
    ...(profileDir
      ? { profile: { dir: profileDir, primary_pid: coco.primary_pid, load_window_us: coco.load_window_us } }
      : {}),
  };
}

const median = (xs: Array<number | undefined>): number | null => {
  const ys = xs.filter((x): x is number => typeof x === "number").sort((a, b) => a - b);
  if (ys.length === 0) return null;
  const mid = Math.floor(ys.length / 2);
  return ys.length % 2 ? ys[mid]! : (ys[mid - 1]! + ys[mid]!) / 2;
};

const scratch = mkdtempSync(join(tmpdir(), "coco-ab-"));
const baseTree = join(scratch, "base");
execFileSync("git", ["worktree", "add", "--detach", baseTree, base], { cwd: here, stdio: "ignore" });
try {
  symlinkSync(join(here, "node_modules"), join(baseTree, "node_modules"));
  for (const file of ["replicated.ts", "ledger-count.ts", "load.ts", "cpu.ts", "etcd.ts"]) {
    copyFileSync(join(here, "bench", file), join(baseTree, "bench", file));
  }
  const samples: { base: Sample[]; head: Sample[] } = { base: [], head: [] };
  for (let round = 0; round < rounds; round++) {
    samples.base.push(runOnce(baseTree, profileRoot && join(profileRoot, `base-${round}`)));
    samples.head.push(runOnce(here, profileRoot && join(profileRoot, `head-${round}`)));
  }
  const summary = (s: Sample[]) => ({
    writes_per_s: median(s.map((x) => x.writes_per_s)),
    p99_ms: median(s.map((x) => x.p99_ms)),
    cpu_ms_per_write_primary: median(s.map((x) => x.cpu_primary)),
    cpu_ms_per_write_backup: median(s.map((x) => x.cpu_backup)),
    tx_per_signature: median(s.map((x) => x.tx_per_signature)),
  });
  const b = summary(samples.base);
  const h = summary(samples.head);
  console.log(
    JSON.stringify(
      {
        benchmark: "replicated writes, this tree against a base revision, alternating rounds",
        command: `npm run -s bench:ab -- --base ${values.base} --rounds ${rounds} --seconds ${values.seconds} --connections ${values.connections} --retries ${retries}${profileRoot ? ` --cpu-prof ${values["cpu-prof"]}` : ""}`,
        base: { revision: base, ...b },
        head: { revision: head, ...h },
        ratio_writes_per_s:
          b.writes_per_s && h.writes_per_s ? Number((h.writes_per_s / b.writes_per_s).toFixed(3)) : null,
        rounds: samples,
      },
      null,
      2,
    ),
  );
} finally {
  execFileSync("git", ["worktree", "remove", "--force", baseTree], { cwd: here, stdio: "ignore" });
  rmSync(scratch, { recursive: true, force: true });
}
