/**
 * `npm run bench:startup`: how long a new user waits. The sandbox (the compiled `coco sandbox`,
 * as `npm start` runs it) from nothing to an opened 3-node network, then again resuming from its
 * ledger, with the time of each step as the sandbox prints it; then single `coco` calls, compiled
 * (bin/coco.js) and through tsx (as before compiling), and `npx coco` (npm's own start-up).
 * Prints a Markdown table for BENCHMARKS.md. Wall times depend on the machine's load (printed).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { reservePorts } from "../test/helpers/ports.ts";
import { processCpuMs } from "./cpu.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const RUNS = Number(values.runs);
const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "coco.js");

interface Timed {
  wallMs: number;
  cpuMs: number;
}

/** Runs a command to completion under /usr/bin/time: wall and CPU (user + system) time. */
function timed(command: string[], cwd = ROOT): Timed {
  const result = spawnSync("/usr/bin/time", ["-f", "@@%e %U %S", ...command], { cwd, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command.join(" ")} failed:\n${result.stderr}`);
  const [wall, user, sys] = /@@([0-9.]+) ([0-9.]+) ([0-9.]+)/.exec(result.stderr)!.slice(1).map(Number);
  return { wallMs: wall! * 1000, cpuMs: (user! + sys!) * 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Starts the sandbox and resolves at the "open" line with the elapsed time and its step lines. */
async function sandboxOpen(dir: string, port: number) {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, "sandbox", "--dir", dir, "--port", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const openMs = await new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Coco sandbox is open")) resolve(performance.now() - started);
    });
    child.once("exit", (code) => reject(new Error(`sandbox exited (${code}):\n${output}`)));
  });
  const steps = output.split("\n").filter((l) => /^ *[0-9.]+ s {2}/.test(l));
  // CPU the nodes spent to get there: where the time goes on a 2-core machine.
  const pids = (
    JSON.parse(readFileSync(join(dir, "network.json"), "utf8")) as { nodes: Array<{ pid: number }> }
  ).nodes.map((n) => n.pid);
  const nodeCpuMs = pids.map((pid) => processCpuMs(pid) ?? Number.NaN);
  return {
    openMs,
    steps,
    nodeCpuMs,
    stop: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners("exit");
        child.once("exit", () => resolve());
        child.kill("SIGINT");
      }),
  };
}

const load = () => loadavg()[0]!.toFixed(1);
const rows: string[] = [];
const row = (what: string, t: { wall: number; cpu?: number }) =>
  rows.push(
    `| ${what} | ${(t.wall / 1000).toFixed(2)} s | ${t.cpu === undefined ? "" : `${(t.cpu / 1000).toFixed(2)} s`} |`,
  );

// Build first, so no measurement includes a compile.
spawnSync(process.execPath, [join(ROOT, "bin", "build.js")], { stdio: "inherit" });
console.log(`load average at start: ${load()} (${RUNS} runs each for the CLI)`);

const dir = mkdtempSync(join(tmpdir(), "coco-bench-startup-"));
const port = await reservePorts(6);
/** The sandbox running now, stopped however the run ends (its nodes would outlive this process). */
let running: { stop(): Promise<void> } | undefined;
try {
  const fresh = await sandboxOpen(join(dir, "ws"), port);
  running = fresh;
  console.log(`fresh start: open after ${(fresh.openMs / 1000).toFixed(1)} s\n${fresh.steps.join("\n")}`);
  console.log(`node CPU to open: ${fresh.nodeCpuMs.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(", ")}`);
  row("sandbox, new service, to open (3 nodes)", { wall: fresh.openMs });

  const cli = (what: string, command: string[], cwd?: string) => {
    const runs = Array.from({ length: RUNS }, () => {
      // A signed governance request carries its creation time in seconds, and the service
      // refuses the same request twice: calls that take under a second would repeat one.
      // Wait (untimed) for the next second.
      if (command.includes("gov"))
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000 - (Date.now() % 1000));
      return timed(command, cwd);
    });
    row(what, { wall: median(runs.map((r) => r.wallMs)), cpu: median(runs.map((r) => r.cpuMs)) });
  };
  cli("`coco --version` (compiled)", [process.execPath, BIN, "--version"]);
  cli(
    "`coco gov propose ... -q` (compiled, signs and calls the primary)",
    [
      process.execPath,
      BIN,
      "gov",
      "propose",
      "set_recovery_threshold",
      "--args",
      '{"recovery_threshold": 1}',
      "-q",
    ],
    join(dir, "ws"),
  );
  cli("`coco --version` through tsx (before compiling)", [
    process.execPath,
    "--import",
    "tsx",
    join(ROOT, "src", "cli", "main.ts"),
    "--version",
  ]);
  cli("`npx coco --version` (npm's start-up added)", ["npx", "coco", "--version"]);
  await fresh.stop();
  running = undefined;

  const resumed = await sandboxOpen(join(dir, "ws"), port);
  running = resumed;
  console.log(`resume: open after ${(resumed.openMs / 1000).toFixed(1)} s\n${resumed.steps.join("\n")}`);
  console.log(`node CPU to open: ${resumed.nodeCpuMs.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(", ")}`);
  row("sandbox, resuming from its ledgers, to open", { wall: resumed.openMs });
  await resumed.stop();
  running = undefined;
} finally {
  await running?.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average at end: ${load()}\n`);
console.log("| what | wall (median) | CPU, user + system (median) |\n|---|---|---|");
console.log(rows.join("\n"));
