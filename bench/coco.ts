import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { startSandbox } from "../src/cli/sandbox.ts";
import type { ServiceCurve } from "../src/crypto/index.ts";

/** A Coco sandbox as the benchmarks drive it: where its nodes are and what they hold. */
export interface CocoCluster {
  nodes: Array<{ id: string; url: string; pid: number }>;
  tls: { ca: string; cert: string; key: string };
  /** Index in `nodes` of the current primary (asked of the nodes). */
  primary(): Promise<number>;
  /** The commit seqno `node` reports. */
  commitSeqno(node: number): Promise<number>;
  /** Every id in the logging app's private records that `node` holds, read on that node. */
  keys(node: number): Promise<Set<string>>;
  stop(): Promise<void>;
}

export interface CocoClusterOptions {
  dir: string;
  nodes: number;
  /** `--cpu-prof` into this directory for every node process. */
  profileDir?: string;
  /** The service curve (P-384 unless set). */
  curve?: ServiceCurve;
  /** Extra Node.js flags for the node processes. */
  nodeArgs?: string[];
}

async function getJson<T>(agent: Agent, url: string): Promise<T> {
  const res = await request(url, { dispatcher: agent });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** Starts a sandbox (one process per node, the logging app) and returns it once it is open. */
export async function startCoco(opts: CocoClusterOptions): Promise<CocoCluster> {
  const port = 18_000 + Math.floor(Math.random() * 900);
  const nodeArgs = [
    ...(opts.nodeArgs ?? []),
    ...(opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : []),
  ];
  const start = (attempt: number) =>
    startSandbox({
      dir: `${opts.dir}${attempt === 0 ? "" : `-${attempt}`}`,
      nodes: opts.nodes,
      port: port + 10 * attempt,
      print: () => {},
      logFormat: "json",
      quiet: true,
      ...(opts.curve ? { curve: opts.curve } : {}),
      ...(nodeArgs.length > 0 ? { nodeArgs } : {}),
    });
  // On a loaded machine the sandbox's governance steps can time out: try again, a bounded number of times.
  let sandbox: Awaited<ReturnType<typeof startSandbox>> | undefined;
  for (let attempt = 0; sandbox === undefined; attempt++) {
    try {
      sandbox = await start(attempt);
    } catch (e) {
      if (attempt >= 2) throw e;
      console.error(`the sandbox did not start (${(e as Error).message}); trying again`);
    }
  }
  const dir = sandbox.dir;
  const tls = {
    ca: readFileSync(join(dir, "service_cert.pem"), "utf8"),
    cert: readFileSync(join(dir, "user0_cert.pem"), "utf8"),
    key: readFileSync(join(dir, "user0_privk.pem"), "utf8"),
  };
  const nodes = sandbox.network.nodes.map((n) => ({ id: n.id, url: `https://${n.rpc_address}`, pid: n.pid }));
  // One agent per node and fresh connections: a connection a backup once forwarded stays forwarded.
  const agents = nodes.map(() => new Agent({ connect: tls }));
  return {
    nodes,
    tls,
    async primary() {
      for (let attempt = 0; attempt < 100; attempt++) {
        const body = await getJson<{ primary_id?: string }>(
          agents[0]!,
          `${nodes[0]!.url}/node/network`,
        ).catch(() => undefined);
        const index = nodes.findIndex((n) => n.id === body?.primary_id);
        if (index >= 0) return index;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("the Coco network has no primary");
    },
    async commitSeqno(node) {
      const body = await getJson<{ transaction_id: string }>(
        agents[node]!,
        `${nodes[node]!.url}/node/commit`,
      );
      return Number(String(body.transaction_id).split(".")[1]);
    },
    async keys(node) {
      const ids = new Set<string>();
      let after: string | undefined;
      for (;;) {
        const query = `limit=1000${after === undefined ? "" : `&after=${encodeURIComponent(after)}`}`;
        const page = await getJson<{ entries: Array<{ id: number }>; next?: string }>(
          agents[node]!,
          `${nodes[node]!.url}/app/log/private/range?${query}`,
        );
        for (const entry of page.entries) ids.add(String(entry.id));
        if (page.next === undefined) return ids;
        after = page.next;
      }
    },
    async stop() {
      await Promise.all(agents.map((a) => a.close()));
      await sandbox.stop();
    },
  };
}

/** The logging app's private write, answered once committed. */
export function cocoPut(value: string): (i: number) => {
  method: "PUT";
  path: string;
  headers: Record<string, string>;
  body: string;
} {
  const body = JSON.stringify({ msg: value });
  return (i) => ({
    method: "PUT",
    path: `/app/log/private?id=${i}`,
    headers: { "content-type": "application/json", "x-coco-wait": "commit" },
    body,
  });
}
