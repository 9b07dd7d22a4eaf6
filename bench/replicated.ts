/**
 * Write throughput of a 3-node Coco network against a 3-member etcd cluster, same machine, same
 * run, same load generator, both over mutual TLS for clients, both answering once a write is
 * committed by a majority and fsynced. Writes go to Coco's primary and to one etcd member.
 *
 *   npm run -s bench:replicated -- [--seconds 10] [--connections 64] [--only coco|etcd] [--cpu-prof DIR]
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of each Coco node process into DIR (this process is
 * not profiled), for `tsx bench/profile-summary.ts`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startSandbox } from "../src/cli/sandbox.ts";
import { perOperation, processCpuMs } from "./cpu.ts";
import { benchEtcd } from "./etcd.ts";
import { countLedger, ledgerGrowth } from "./ledger-count.ts";
import { type LoadResult, runLoad } from "./load.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    only: { type: "string" },
    "cpu-prof": { type: "string" },
  },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
if (
  !(seconds > 0 && seconds <= 600) ||
  !(Number.isInteger(connections) && connections >= 1 && connections <= 1024)
) {
  console.error("--seconds must be in (0, 600] and --connections an integer from 1 to 1024");
  process.exit(2);
}
if (values.only !== undefined && values.only !== "coco" && values.only !== "etcd") {
  console.error("--only must be coco or etcd");
  process.exit(2);
}
const value = "x".repeat(100);
const profileDir = values["cpu-prof"];

interface CocoResult extends LoadResult {
  /** CPU time per committed write, in ms: each node process and this process (the load generator). */
  cpu_ms_per_write?: { primary?: number; backups: Array<number | undefined>; load_generator: number };
  primary_pid?: number;
  load_window_us?: number[];
  /** The primary's ledger during the load: transactions, signature transactions, and their ratio. */
  ledger?: ReturnType<typeof ledgerGrowth>;
}

async function benchCoco(dir: string): Promise<CocoResult> {
  const port = 18_000 + Math.floor(Math.random() * 900);
  const sandbox = await startSandbox({
    dir,
    nodes: 3,
    port,
    print: () => {},
    logFormat: "json",
    quiet: true,
    ...(profileDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] } : {}),
  });
  const primary = sandbox.network.nodes.find((n) => n.id === sandbox.network.primary)!;
  let result: CocoResult;
  const ledgerBefore = await countLedger(primary.ledger_dir);
  try {
    const pids = sandbox.network.nodes.map((n) => n.pid);
    const cpuBefore = pids.map(processCpuMs);
    const ownBefore = process.cpuUsage();
    const loadStart = process.hrtime.bigint() / 1000n;
    const load = await runLoad({
      origin: `https://${primary.rpc_address}`,
      tls: {
        ca: readFileSync(join(dir, "service_cert.pem"), "utf8"),
        cert: readFileSync(join(dir, "user0_cert.pem"), "utf8"),
        key: readFileSync(join(dir, "user0_privk.pem"), "utf8"),
      },
      connections,
      seconds,
      request: (i) => ({
        method: "PUT",
        path: `/app/log/private?id=${i}`,
        headers: { "content-type": "application/json", "x-coco-wait": "commit" },
        body: JSON.stringify({ msg: value }),
      }),
    });
    const window = [Number(loadStart), Number(process.hrtime.bigint() / 1000n)];
    const own = process.cpuUsage(ownBefore);
    const cpuAfter = pids.map(processCpuMs);
    const perWrite = pids.map((_, i) => perOperation(cpuBefore[i], cpuAfter[i], load.operations));
    const cpu = {
      primary: perWrite[pids.indexOf(primary.pid)],
      backups: perWrite.filter((_, i) => pids[i] !== primary.pid),
      load_generator: Number(((own.user + own.system) / 1000 / Math.max(1, load.operations)).toFixed(3)),
    };
    // Profiles are named by process id (this says which was the primary), and the load's window is
    // on the monotonic clock V8's profiles use (microseconds).
    const profile = profileDir ? { primary_pid: primary.pid, load_window_us: window } : {};
    result = { ...load, cpu_ms_per_write: cpu, ...profile };
  } finally {
    await sandbox.stop();
  }
  return { ...result, ledger: ledgerGrowth(ledgerBefore, await countLedger(primary.ledger_dir)) };
}

const root = mkdtempSync(join(tmpdir(), "coco-bench-3-"));
try {
  const report = {
    benchmark: "3-node write throughput, 100-byte values, mutual TLS, HTTP/1.1, answered on commit",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    settings: { seconds, connections },
    coco:
      values.only === "etcd"
        ? { skipped: "--only etcd" }
        : {
            description: "3 Coco nodes; PUT to the primary with x-coco-wait: commit",
            ...(await benchCoco(join(root, "coco"))),
          },
    etcd:
      values.only === "coco"
        ? { skipped: "--only coco" }
        : {
            description: "3 etcd members; v3 JSON gateway PUT to one member",
            ...(await benchEtcd(mkdtempSync(join(root, "etcd-")), 3, { seconds, connections, value })),
          },
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  rmSync(root, { recursive: true, force: true });
}
