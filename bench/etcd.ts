import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { makeTls } from "./certs.ts";
import { perOperation, processCpuMs } from "./cpu.ts";
import { type LoadResult, runLoad } from "./load.ts";

/** Polls `check` every 100 ms for up to 30 s. */
export async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start`);
}

export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

export function etcdVersion(): string | undefined {
  const version = spawnSync("etcd", ["--version"], { encoding: "utf8" });
  return version.status === 0 ? version.stdout.split("\n")[0] : undefined;
}

/**
 * Starts an etcd cluster of `members` (client mutual TLS, plain peer traffic) and drives it with
 * the same closed-loop load as Coco: PUTs of `value` under fresh keys to the first member.
 */
export async function benchEtcd(
  dir: string,
  members: number,
  load: { seconds: number; connections: number; value: string },
): Promise<
  | (LoadResult & {
      cpu_ms_per_write?: {
        written_to?: number;
        others: Array<number | undefined>;
        load_generator: number;
      };
    })
  | { skipped: string }
> {
  if (!etcdVersion()) return { skipped: "etcd is not installed (Debian: apt-get install etcd-server)" };
  const tls = await makeTls();
  writeFileSync(join(dir, "ca.pem"), tls.caPem);
  writeFileSync(join(dir, "server.pem"), tls.server.certPem);
  writeFileSync(join(dir, "server-key.pem"), tls.server.keyPem);
  const base = 19_000 + Math.floor(Math.random() * 900);
  const nodes = Array.from({ length: members }, (_, i) => ({
    name: `m${i}`,
    client: `https://127.0.0.1:${base + i}`,
    peer: `http://127.0.0.1:${base + 50 + i}`,
  }));
  const cluster = nodes.map((m) => `${m.name}=${m.peer}`).join(",");
  const children = nodes.map((m) => {
    mkdirSync(join(dir, m.name), { recursive: true });
    // biome-ignore format: flag/value pairs read best one pair per line
    const args = [
      "--name", m.name,
      "--data-dir", join(dir, m.name),
      "--listen-client-urls", m.client,
      "--advertise-client-urls", m.client,
      "--listen-peer-urls", m.peer,
      "--initial-advertise-peer-urls", m.peer,
      "--initial-cluster", cluster,
      "--initial-cluster-state", "new",
      "--cert-file", join(dir, "server.pem"),
      "--key-file", join(dir, "server-key.pem"),
      "--trusted-ca-file", join(dir, "ca.pem"),
      "--client-cert-auth",
      "--log-level", "error",
    ];
    return spawn("etcd", args, { stdio: "ignore" });
  });
  const tlsOpts = { ca: tls.caPem, cert: tls.client.certPem, key: tls.client.keyPem };
  const url = nodes[0]!.client;
  try {
    await waitFor(async () => {
      const agent = new Agent({ connect: tlsOpts });
      const res = await request(`${url}/health`, { dispatcher: agent });
      const body = await res.body.text();
      await agent.close();
      return res.statusCode === 200 && body.includes("true");
    }, "etcd");
    const encoded = Buffer.from(load.value).toString("base64");
    const pids = children.map((c) => c.pid ?? -1);
    const cpuBefore = pids.map(processCpuMs);
    const ownBefore = process.cpuUsage();
    const result = await runLoad({
      origin: url,
      tls: tlsOpts,
      connections: load.connections,
      seconds: load.seconds,
      request: (i) => ({
        method: "POST",
        path: "/v3/kv/put",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: Buffer.from(`records/${i}`).toString("base64"), value: encoded }),
      }),
    });
    const own = process.cpuUsage(ownBefore);
    const cpuAfter = pids.map(processCpuMs);
    // CPU per write, as for Coco: the member the load goes to, the others, and the load generator.
    const perWrite = pids.map((_, i) => perOperation(cpuBefore[i], cpuAfter[i], result.operations));
    return {
      ...result,
      cpu_ms_per_write: {
        written_to: perWrite[0],
        others: perWrite.slice(1),
        load_generator: Number(((own.user + own.system) / 1000 / Math.max(1, result.operations)).toFixed(3)),
      },
    };
  } finally {
    await Promise.all(children.map(stopChild));
  }
}
