import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { makeTls } from "./certs.ts";
import { perOperation, processCpuMs } from "./cpu.ts";
import { type LoadResult, runLoad } from "./load.ts";

/** What to tell a user who has no etcd. */
export const ETCD_MISSING =
  "etcd is not installed: on Debian or Ubuntu run `apt-get install -y etcd-server` (bookworm ships etcd 3.4.23)";

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
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

export function etcdVersion(): string | undefined {
  const version = spawnSync("etcd", ["--version"], { encoding: "utf8" });
  return version.status === 0 ? version.stdout.split("\n")[0] : undefined;
}

export interface EtcdCluster {
  members: Array<{ name: string; url: string; pid: number }>;
  tls: { ca: string; cert: string; key: string };
  /** Index in `members` of the current leader (asked of the members themselves). */
  leader(): Promise<number>;
  /** Every key under `prefix` that `member` holds, read locally (serializable). */
  keys(member: number, prefix: string): Promise<Set<string>>;
  stop(): Promise<void>;
}

async function postJson<T>(agent: Agent, url: string, body: unknown): Promise<T> {
  const res = await request(url, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** Starts `count` etcd members (client mutual TLS, plain peer traffic) in `dir`. */
export async function startEtcd(dir: string, count: number): Promise<EtcdCluster> {
  if (!etcdVersion()) throw new Error(ETCD_MISSING);
  const certs = await makeTls();
  writeFileSync(join(dir, "ca.pem"), certs.caPem);
  writeFileSync(join(dir, "server.pem"), certs.server.certPem);
  writeFileSync(join(dir, "server-key.pem"), certs.server.keyPem);
  const base = 19_000 + Math.floor(Math.random() * 900);
  const nodes = Array.from({ length: count }, (_, i) => ({
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
  const tls = { ca: certs.caPem, cert: certs.client.certPem, key: certs.client.keyPem };
  const agent = new Agent({ connect: tls });
  const stop = async () => {
    await agent.close();
    await Promise.all(children.map(stopChild));
  };
  try {
    for (const node of nodes) {
      await waitFor(async () => {
        const res = await request(`${node.client}/health`, { dispatcher: agent });
        const body = await res.body.text();
        return res.statusCode === 200 && body.includes("true");
      }, `etcd member ${node.name}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const members = nodes.map((n, i) => ({ name: n.name, url: n.client, pid: children[i]!.pid ?? -1 }));
  return {
    members,
    tls,
    async leader() {
      for (let attempt = 0; attempt < 50; attempt++) {
        const status = await Promise.all(
          members.map((m) =>
            postJson<{ leader?: string; header?: { member_id?: string } }>(
              agent,
              `${m.url}/v3/maintenance/status`,
              {},
            ),
          ),
        );
        const leader = status[0]?.leader;
        const index = status.findIndex((s) => s.header?.member_id === leader);
        if (leader && leader !== "0" && index >= 0) return index;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("etcd has no leader");
    },
    async keys(member, prefix) {
      const key = Buffer.from(prefix);
      const end = Buffer.from(prefix);
      end[end.length - 1]! += 1;
      const body = await postJson<{ kvs?: Array<{ key: string }> }>(
        agent,
        `${members[member]!.url}/v3/kv/range`,
        {
          key: key.toString("base64"),
          range_end: end.toString("base64"),
          keys_only: true,
          serializable: true,
        },
      );
      const kvs = body.kvs ?? [];
      return new Set(kvs.map((kv) => Buffer.from(kv.key, "base64").toString()));
    },
    stop,
  };
}

/** etcd's v3 JSON gateway PUT of `value` under `records/<i>`. */
export function etcdPut(value: string): (i: number) => {
  method: "POST";
  path: string;
  headers: Record<string, string>;
  body: string;
} {
  const encoded = Buffer.from(value).toString("base64");
  return (i) => ({
    method: "POST",
    path: "/v3/kv/put",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: Buffer.from(`records/${i}`).toString("base64"), value: encoded }),
  });
}

/**
 * Starts an etcd cluster of `members` and drives its leader with the same closed-loop load as
 * Coco: PUTs of `value` under fresh keys.
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
  if (!etcdVersion()) return { skipped: ETCD_MISSING };
  const cluster = await startEtcd(dir, members);
  try {
    const leader = await cluster.leader();
    const pids = cluster.members.map((m) => m.pid);
    const cpuBefore = pids.map(processCpuMs);
    const ownBefore = process.cpuUsage();
    const result = await runLoad({
      origin: cluster.members[leader]!.url,
      tls: cluster.tls,
      connections: load.connections,
      seconds: load.seconds,
      request: etcdPut(load.value),
    });
    const own = process.cpuUsage(ownBefore);
    const cpuAfter = pids.map(processCpuMs);
    // CPU per write, as for Coco: the member the load goes to, the others, and the load generator.
    const perWrite = pids.map((_, i) => perOperation(cpuBefore[i], cpuAfter[i], result.operations));
    return {
      ...result,
      cpu_ms_per_write: {
        written_to: perWrite[leader],
        others: perWrite.filter((_, i) => i !== leader),
        load_generator: Number(((own.user + own.system) / 1000 / Math.max(1, result.operations)).toFixed(3)),
      },
    };
  } finally {
    await cluster.stop();
  }
}
