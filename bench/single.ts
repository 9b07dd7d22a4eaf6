/**
 * Write throughput of one Coco node against one etcd node, same machine, same run, same load
 * generator, both over mutual TLS and both answering only once the write is durable.
 *
 *   npm run -s bench:single -- [--seconds 10] [--connections 64]
 *
 * (This was `npm run bench` until issue 17; `npm run bench` is now the 3-node comparison, bench/run.ts.)
 *
 * Prints one JSON document. etcd must be on PATH (Debian: apt-get install etcd-server);
 * without it the etcd row says so and Coco is still measured.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { makeUser } from "./certs.ts";
import { benchEtcd, etcdVersion, stopChild, waitFor } from "./etcd.ts";
import { type LoadResult, runLoad } from "./load.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "10" }, connections: { type: "string", default: "64" } },
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

const MAIN = join(import.meta.dirname, "..", "src", "cli", "main.ts");
const TSX = import.meta.resolve("tsx");
const value = "x".repeat(100);

async function benchCoco(dir: string, wait: "commit" | "none"): Promise<LoadResult> {
  const user = await makeUser();
  const member = await makeUser();
  writeFileSync(join(dir, "user.pem"), user.certPem);
  writeFileSync(join(dir, "member.pem"), member.certPem);
  const port = 18_000 + Math.floor(Math.random() * 1000);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      dir: "node",
      rpc: { address: `127.0.0.1:${port}` },
      members: [{ cert: "member.pem" }],
      openAtNodes: 1,
      users: [{ cert: "user.pem" }],
      app: "logging",
      log: { level: "warn" },
    }),
  );
  const profile = process.env.COCO_BENCH_PROFILE
    ? ["--cpu-prof", "--cpu-prof-dir", process.env.COCO_BENCH_PROFILE]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, "--import", TSX, MAIN, "start", "--config", join(dir, "config.json")],
    {
      stdio: "inherit",
    },
  );
  try {
    await waitFor(async () => {
      const agent = new Agent({ connect: { ca: readFileSync(join(dir, "service_cert.pem"), "utf8") } });
      const res = await request(`https://127.0.0.1:${port}/node/ready/app`, { dispatcher: agent });
      await res.body.dump();
      await agent.close();
      return res.statusCode === 204;
    }, "coco");
    return await runLoad({
      origin: `https://127.0.0.1:${port}`,
      tls: { ca: readFileSync(join(dir, "service_cert.pem"), "utf8"), cert: user.certPem, key: user.keyPem },
      connections,
      seconds,
      request: (i) => ({
        method: "PUT",
        path: `/app/log/private?id=${i}`,
        headers: {
          "content-type": "application/json",
          ...(wait === "commit" ? { "x-coco-wait": "commit" } : {}),
        },
        body: JSON.stringify({ msg: value }),
      }),
    });
  } finally {
    await stopChild(child);
  }
}

const root = mkdtempSync(join(tmpdir(), "coco-bench-"));
try {
  const dirs = ["coco-commit", "coco-exec", "etcd"].map((name) => {
    const d = join(root, name);
    mkdirSync(d, { recursive: true });
    return d;
  });
  const report = {
    benchmark: "single-node write throughput, 100-byte values, mutual TLS, HTTP/1.1",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    settings: { seconds, connections },
    coco_durable: {
      description: "PUT with x-coco-wait: commit (answered once signed and fsynced)",
      ...(await benchCoco(dirs[0]!, "commit")),
    },
    coco_executed: {
      description: "PUT answered when executed, before commit (CCF's default)",
      ...(await benchCoco(dirs[1]!, "none")),
    },
    etcd: {
      description: "etcd v3 JSON gateway PUT (answered once committed and fsynced)",
      version: etcdVersion(),
      ...(await benchEtcd(dirs[2]!, 1, { seconds, connections, value })),
    },
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  rmSync(root, { recursive: true, force: true });
}
