/**
 * A JS app against the native logging app: the same 3-node network, the same run, the same load
 * generator (bench/load.ts), writes answered on commit. The JS app is CCF's logging sample,
 * unmodified, read in place from ../shared/vectors/ccf/app-logging when present (else
 * samples/js-app), installed by governance at sandbox start.
 *
 *   npm run -s bench:js -- [--seconds 10] [--connections 32] [--rounds 3] [--cpu-prof DIR]
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of each node process into DIR, for
 * `tsx bench/profile-summary.ts`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startSandbox } from "../src/cli/sandbox.ts";
import { perOperation, processCpuMs } from "./cpu.ts";
import { type LoadOptions, runLoad } from "./load.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    rounds: { type: "string", default: "3" },
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
const rounds = Number(values.rounds);
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) {
  console.error("--rounds must be an integer from 1 to 20");
  process.exit(2);
}
const profileDir = values["cpu-prof"];
const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const sampleDir = join(repo, "..", "shared", "vectors", "ccf", "app-logging");
const useCcfSample = existsSync(join(sampleDir, "app.json"));
const appDir = useCcfSample ? sampleDir : join(repo, "samples", "js-app");
const msg = "x".repeat(100);

type Spec = ReturnType<LoadOptions["request"]>;
const WAIT = { "content-type": "application/json", "x-coco-wait": "commit" };
const native = (i: number): Spec => ({
  method: "PUT",
  path: `/app/log/private?id=${i}`,
  headers: WAIT,
  body: JSON.stringify({ msg }),
});
// CCF's sample: POST /app/log/private {id, msg} (policies jwt, user_cert: the certificate passes).
const js = useCcfSample
  ? (i: number): Spec => ({
      method: "POST",
      path: "/app/log/private",
      headers: WAIT,
      body: JSON.stringify({ id: i, msg }),
    })
  : (i: number): Spec => ({
      method: "PUT",
      path: `/app/notes/${i}`,
      headers: WAIT,
      body: JSON.stringify({ text: msg }),
    });

const root = mkdtempSync(join(tmpdir(), "coco-bench-js-"));
const port = 18_000 + Math.floor(Math.random() * 900);
const sandbox = await startSandbox({
  dir: root,
  nodes: 3,
  port,
  print: () => {},
  logFormat: "json",
  quiet: true,
  jsApp: appDir,
  ...(profileDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] } : {}),
});
try {
  const primary = sandbox.network.nodes.find((n) => n.id === sandbox.network.primary)!;
  const tls = {
    ca: readFileSync(join(root, "service_cert.pem"), "utf8"),
    cert: readFileSync(join(root, "user0_cert.pem"), "utf8"),
    key: readFileSync(join(root, "user0_privk.pem"), "utf8"),
  };
  const measure = async (request: LoadOptions["request"]) => {
    const before = processCpuMs(primary.pid);
    const result = await runLoad({
      origin: `https://${primary.rpc_address}`,
      tls,
      connections,
      seconds,
      request,
    });
    return {
      ...result,
      primary_cpu_ms_per_write: perOperation(before, processCpuMs(primary.pid), result.operations),
    };
  };
  // Check that a JS write succeeds and says so before measuring it.
  const probe = await runLoad({
    origin: `https://${primary.rpc_address}`,
    tls,
    connections: 1,
    seconds: 0.2,
    request: js,
  });
  if (probe.operations === 0 || probe.errors > 0)
    throw new Error(`the JS app's write fails: ${JSON.stringify(probe)}`);
  // Warm both paths (JIT, the JS app's interpreter) before measuring either.
  await runLoad({ origin: `https://${primary.rpc_address}`, tls, connections, seconds: 1, request: native });
  await runLoad({ origin: `https://${primary.rpc_address}`, tls, connections, seconds: 1, request: js });
  // The machine is shared: alternate native and JS rounds, and compare the medians.
  const nativeRounds = [];
  const jsRounds = [];
  for (let r = 0; r < rounds; r++) {
    nativeRounds.push(await measure(native));
    jsRounds.push(await measure(js));
  }
  const median = <T extends { ops_per_sec: number }>(xs: T[]): T =>
    [...xs].sort((a, b) => a.ops_per_sec - b.ops_per_sec)[Math.floor(xs.length / 2)]!;
  const nativeResult = {
    ...median(nativeRounds),
    rounds_ops_per_sec: nativeRounds.map((x) => x.ops_per_sec),
  };
  const jsResult = { ...median(jsRounds), rounds_ops_per_sec: jsRounds.map((x) => x.ops_per_sec) };
  const report = {
    benchmark: "JS app vs native app: 3-node network, 100-byte writes, mutual TLS, answered on commit",
    command: `npm run -s bench:js -- --seconds ${seconds} --connections ${connections} --rounds ${rounds}`,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    settings: { seconds, connections, rounds },
    native: { description: "native logging app: PUT /app/log/private?id=N {msg}", ...nativeResult },
    js: {
      description: useCcfSample
        ? "CCF's JS logging sample, unmodified: POST /app/log/private {id, msg}"
        : "samples/js-app: PUT /app/notes/N {text}",
      app: appDir,
      ...jsResult,
    },
    ratio: Number((jsResult.ops_per_sec / Math.max(1e-9, nativeResult.ops_per_sec)).toFixed(3)),
    ...(profileDir ? { primary_pid: primary.pid } : {}),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await sandbox.stop();
  rmSync(root, { recursive: true, force: true });
}
