/**
 * Write throughput of a 3-node Coco network against a 3-member etcd cluster, same machine, same
 * run, same load generator, both over mutual TLS for clients, both answering once a write is
 * committed by a majority and fsynced. Writes go to Coco's primary and to one etcd member.
 *
 *   npm run -s bench:replicated -- [--seconds 10] [--connections 64]
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { startSandbox } from "../src/cli/sandbox.ts";
import { makeTls } from "./certs.ts";
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
const value = "x".repeat(100);

async function benchCoco(dir: string): Promise<LoadResult> {
  const port = 18_000 + Math.floor(Math.random() * 900);
  const sandbox = await startSandbox({
    dir,
    nodes: 3,
    port,
    print: () => {},
    logFormat: "json",
    quiet: true,
  });
  try {
    const primary = sandbox.network.nodes.find((n) => n.id === sandbox.network.primary)!;
    return await runLoad({
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
  } finally {
    await sandbox.stop();
  }
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

async function benchEtcd(dir: string): Promise<LoadResult | { skipped: string }> {
  if (spawnSync("etcd", ["--version"]).status !== 0) {
    return { skipped: "etcd is not installed (Debian: apt-get install etcd-server)" };
  }
  const tls = await makeTls();
  writeFileSync(join(dir, "ca.pem"), tls.caPem);
  writeFileSync(join(dir, "server.pem"), tls.server.certPem);
  writeFileSync(join(dir, "server-key.pem"), tls.server.keyPem);
  const base = 19_000 + Math.floor(Math.random() * 900);
  const members = [0, 1, 2].map((i) => ({
    name: `m${i}`,
    client: `https://127.0.0.1:${base + i}`,
    peer: `http://127.0.0.1:${base + 10 + i}`,
  }));
  const cluster = members.map((m) => `${m.name}=${m.peer}`).join(",");
  const children = members.map((m) => {
    mkdirSync(join(dir, m.name), { recursive: true });
    return spawn(
      "etcd",
      [
        "--name",
        m.name,
        "--data-dir",
        join(dir, m.name),
        "--listen-client-urls",
        m.client,
        "--advertise-client-urls",
        m.client,
        "--listen-peer-urls",
        m.peer,
        "--initial-advertise-peer-urls",
        m.peer,
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--cert-file",
        join(dir, "server.pem"),
        "--key-file",
        join(dir, "server-key.pem"),
        "--trusted-ca-file",
        join(dir, "ca.pem"),
        "--client-cert-auth",
        "--log-level",
        "error",
      ],
      { stdio: "ignore" },
    );
  });
  const tlsOpts = { ca: tls.caPem, cert: tls.client.certPem, key: tls.client.keyPem };
  try {
    for (let i = 0; i < 300; i++) {
      try {
        const agent = new Agent({ connect: tlsOpts });
        const res = await request(`${members[0]!.client}/health`, { dispatcher: agent });
        const body = await res.body.text();
        await agent.close();
        if (res.statusCode === 200 && body.includes("true")) break;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const encoded = Buffer.from(value).toString("base64");
    return await runLoad({
      origin: members[0]!.client,
      tls: tlsOpts,
      connections,
      seconds,
      request: (i) => ({
        method: "POST",
        path: "/v3/kv/put",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: Buffer.from(`records/${i}`).toString("base64"), value: encoded }),
      }),
    });
  } finally {
    await Promise.all(children.map(stop));
  }
}

const root = mkdtempSync(join(tmpdir(), "coco-bench-3-"));
try {
  const report = {
    benchmark: "3-node write throughput, 100-byte values, mutual TLS, HTTP/1.1, answered on commit",
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    settings: { seconds, connections },
    coco: {
      description: "3 Coco nodes; PUT to the primary with x-coco-wait: commit",
      ...(await benchCoco(join(root, "coco"))),
    },
    etcd: {
      description: "3 etcd members; v3 JSON gateway PUT to one member",
      ...(await benchEtcd(mkdtempSync(join(root, "etcd-")))),
    },
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  rmSync(root, { recursive: true, force: true });
}
