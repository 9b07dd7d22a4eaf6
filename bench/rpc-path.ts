/**
 * The primary's CPU per request on the app path, comparable under load: one single-node service
 * per tree (this one, and `--base DIR` if given), each in its own child process, driven in turn
 * by the same keep-alive TLS load from this process (undici, client certificates, the logging
 * app's `PUT /app/log/private?id=N` with `x-coco-wait: commit`, as `npm run bench` sends).
 *
 *   npx tsx bench/rpc-path.ts [--base DIR] [--rounds 5] [--requests 3000] [--connections 32]
 *     [--warmup 1000] [--no-wait] [--cpu-prof DIR] [--heap-sample DIR]
 *
 * For each round and each tree (the order alternates ABBA so drift cancels) it prints the server
 * process's CPU (user + system, from its own `process.cpuUsage`) per request in µs, its GC time
 * and count, and the bytes the server's V8 heap allocated per request (freed by GC in the window
 * plus the change in the used heap: independent of the machine's load). Wall-clock figures are
 * printed too but mean little on a shared machine. `DIR` is another checkout (e.g. a git worktree
 * of the commit before a change) with node_modules; its own `test/helpers/cluster.ts` starts its
 * node. With `--cpu-prof` each server writes its profile to `DIR/<tree>/` (the largest file there); the load windows it prints (`window_us`,
 * monotonic µs as the profile's timestamps) select the samples for bench/profile-summary.ts.
 * With `--heap-sample DIR` each server samples its allocations in the load windows (V8's sampling
 * heap profiler, collected objects included: what was allocated, not what survived) and writes
 * `DIR/<tree>.heapprofile`; bench/heap-summary.ts prints bytes per request by function and file.
 */
import { type ChildProcess, fork } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { dirname, resolve } from "node:path";
import { TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import { Pool } from "undici";

interface Ready {
  kind: "ready";
  port: number;
  tls: { ca: string; cert: string; key: string };
}
interface Mark {
  kind: "mark";
  cpuUs: number;
  hrUs: number;
  gcCount: number;
  gcUs: number;
  allocatedBytes: number;
  /** GC pauses by V8's type name (Scavenge, MarkSweepCompact, ...): count and longest, µs. */
  gcByType: Record<string, { count: number; maxUs: number }>;
  /** Writes handed to TLS sockets (each is one TLS record at least). */
  socketWrites: number;
}

/** Counts the writes the server's TLS sockets make (a corked write of several chunks is one). */
let socketWrites = 0;
function countSocketWrites(): void {
  const proto = TLSSocket.prototype as unknown as { _writeGeneric: (...args: unknown[]) => unknown };
  const original = proto._writeGeneric;
  proto._writeGeneric = function (this: unknown, ...args: unknown[]) {
    socketWrites++;
    return original.apply(this, args);
  };
}

const here = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------------------------
// The server side: a child process running one node of `tree`.

/**
 * Allocation sampling across the load windows (one profile for all of them): every sampled
 * allocation, including objects a later GC collected.
 */
class HeapSampler {
  private session = new Session();
  private started = false;
  constructor(private readonly file: string) {
    this.session.connect();
  }
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.session.post("HeapProfiler.startSampling", {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  }
  async write(): Promise<void> {
    if (!this.started) return;
    const { profile } = (await this.session.post("HeapProfiler.stopSampling")) as { profile: unknown };
    writeFileSync(this.file, JSON.stringify(profile));
  }
}

async function serve(tree: string, heapFile: string | undefined): Promise<void> {
  countSocketWrites();
  const sampler = heapFile ? new HeapSampler(heapFile) : undefined;
  const { Cluster } = (await import(resolve(tree, "test/helpers/cluster.ts"))) as {
    Cluster: typeof import("../test/helpers/cluster.ts").Cluster;
  };
  const cluster = await Cluster.create();
  // Snapshots are another helper's stage; kept out of the window so they add no noise.
  const node = await cluster.startService({ snapshots: { txInterval: 100_000_000 } });
  await cluster.untilOpen();
  let profiler: v8.GCProfiler | undefined;
  let usedAtStart = 0;
  const send = (m: Ready | Mark) => process.send?.(m);
  process.on("message", async (raw) => {
    const message = raw as { cmd: "start" | "stop" | "exit" };
    if (message.cmd === "start") {
      await sampler?.start();
      profiler = new v8.GCProfiler();
      profiler.start();
      usedAtStart = v8.getHeapStatistics().used_heap_size;
      const cpu = process.cpuUsage();
      send({
        kind: "mark",
        cpuUs: cpu.user + cpu.system,
        hrUs: Number(process.hrtime.bigint() / 1000n),
        gcCount: 0,
        gcUs: 0,
        gcByType: {},
        allocatedBytes: 0,
        socketWrites,
      });
    } else if (message.cmd === "stop") {
      const cpu = process.cpuUsage();
      const hrUs = Number(process.hrtime.bigint() / 1000n);
      const usedAtEnd = v8.getHeapStatistics().used_heap_size;
      const stats = profiler?.stop()?.statistics ?? [];
      let freed = 0;
      let gcUs = 0;
      const gcByType: Mark["gcByType"] = {};
      for (const s of stats) {
        freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
        gcUs += s.cost;
        const type = gcByType[s.gcType] ?? { count: 0, maxUs: 0 };
        gcByType[s.gcType] = type;
        type.count++;
        type.maxUs = Math.max(type.maxUs, Math.round(s.cost));
      }
      send({
        kind: "mark",
        cpuUs: cpu.user + cpu.system,
        hrUs,
        gcCount: stats.length,
        gcUs,
        gcByType,
        allocatedBytes: freed + usedAtEnd - usedAtStart,
        socketWrites,
      });
    } else {
      await sampler?.write();
      await cluster.stop();
      process.exit(0);
    }
  });
  send({
    kind: "ready",
    port: node.port,
    tls: {
      ca: node.node.identity.serviceCertPem,
      cert: cluster.user.certPem,
      key: cluster.user.privateKeyPem,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The driving side.

class Server {
  private waiting: ((m: Mark) => void) | undefined;
  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly ready: Ready,
  ) {
    child.on("message", (m) => {
      if ((m as Mark).kind === "mark") this.waiting?.(m as Mark);
    });
  }

  static start(
    name: string,
    tree: string,
    profileDir: string | undefined,
    heapDir: string | undefined,
  ): Promise<Server> {
    const heapArgs = heapDir ? ["--heap-sample", resolve(heapDir, `${name}.heapprofile`)] : [];
    const child = fork(fileURLToPath(import.meta.url), ["--serve", tree, ...heapArgs], {
      execArgv: [
        ...process.execArgv,
        ...(profileDir
          ? // One directory per tree, default names: tsx's loader thread writes a profile too, and
            // a fixed name would let it overwrite the main thread's (the larger file).
            ["--cpu-prof", `--cpu-prof-dir=${resolve(profileDir, name)}`]
          : []),
      ],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    return new Promise((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: the node did not start in 120 s`)), 120_000);
      child.once("exit", (code) => reject(new Error(`${name}: the server exited (${code})`)));
      child.on("message", function onReady(m) {
        if ((m as Ready).kind !== "ready") return;
        clearTimeout(timer);
        child.off("message", onReady);
        resolveReady(new Server(name, child, m as Ready));
      });
    });
  }

  mark(cmd: "start" | "stop"): Promise<Mark> {
    return new Promise((resolveMark) => {
      this.waiting = resolveMark;
      this.child.send({ cmd });
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ cmd: "exit" });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

/** Sends `count` writes over `connections` keep-alive connections; returns the failures. */
async function drive(
  pool: Pool,
  connections: number,
  first: number,
  count: number,
  wait: boolean,
): Promise<{ errors: number; statuses: Map<number, number> }> {
  let next = first;
  const last = first + count;
  let errors = 0;
  const statuses = new Map<number, number>();
  const body = JSON.stringify({ msg: "x".repeat(64) });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (wait) headers["x-coco-wait"] = "commit";
  const client = async () => {
    while (next < last) {
      const i = next++;
      try {
        const res = await pool.request({ method: "PUT", path: `/app/log/private?id=${i}`, headers, body });
        await res.body.dump();
        if (res.statusCode !== 200) {
          errors++;
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        }
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, client));
  return { errors, statuses };
}

interface Round {
  tree: string;
  round: number;
  cpu_us_per_request: number;
  gc_us_per_request: number;
  gcs: number;
  /** Per GC type: pauses and the longest (µs, wall time: inflated on a loaded machine). */
  gc_by_type: Mark["gcByType"];
  allocated_bytes_per_request: number;
  socket_writes_per_request: number;
  requests_per_s_wall: number;
  errors: number;
  window_us: [number, number];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      base: { type: "string" },
      rounds: { type: "string", default: "5" },
      requests: { type: "string", default: "3000" },
      connections: { type: "string", default: "32" },
      warmup: { type: "string", default: "1000" },
      "no-wait": { type: "boolean", default: false },
      "cpu-prof": { type: "string" },
      "heap-sample": { type: "string" },
    },
  });
  if (values.serve) return serve(values.serve, values["heap-sample"]);
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const connections = Number(values.connections);
  const wait = !values["no-wait"];
  const profileDir = values["cpu-prof"] ? resolve(values["cpu-prof"]) : undefined;
  const trees: Array<[string, string]> = [["head", resolve(here, "..")]];
  if (values.base) trees.unshift(["base", resolve(values.base)]);

  const servers: Server[] = [];
  try {
    for (const [name, tree] of trees)
      servers.push(await Server.start(name, tree, profileDir, values["heap-sample"]));
    const pools = servers.map(
      (s) =>
        new Pool(`https://127.0.0.1:${s.ready.port}`, {
          connections,
          pipelining: 1,
          connect: s.ready.tls,
        }),
    );
    let nextId = 0;
    for (let i = 0; i < servers.length; i++) {
      const warm = await drive(pools[i]!, connections, 0, Number(values.warmup), wait);
      if (warm.errors > 0)
        console.error(`${servers[i]!.name}: ${warm.errors} errors in the warm-up`, warm.statuses);
    }
    nextId = Number(values.warmup);
    const results: Round[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = servers.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const server = servers[i]!;
        const before = await server.mark("start");
        const started = performance.now();
        const { errors } = await drive(pools[i]!, connections, nextId, requests, wait);
        const seconds = (performance.now() - started) / 1000;
        const after = await server.mark("stop");
        const r: Round = {
          tree: server.name,
          round,
          cpu_us_per_request: Math.round((after.cpuUs - before.cpuUs) / requests),
          gc_us_per_request: Number((after.gcUs / requests).toFixed(1)),
          gcs: after.gcCount,
          gc_by_type: after.gcByType,
          allocated_bytes_per_request: Math.round(after.allocatedBytes / requests),
          socket_writes_per_request: Number(
            ((after.socketWrites - before.socketWrites) / requests).toFixed(2),
          ),
          requests_per_s_wall: Math.round(requests / seconds),
          errors,
          window_us: [before.hrUs, after.hrUs],
        };
        results.push(r);
        console.log(JSON.stringify(r));
      }
      nextId += requests;
    }
    await Promise.all(pools.map((p) => p.close()));
    const summary: Record<string, unknown> = {};
    for (const s of servers) {
      const mine = results.filter((r) => r.tree === s.name);
      const cpu = mine.map((r) => r.cpu_us_per_request);
      const alloc = mine.map((r) => r.allocated_bytes_per_request);
      const gc = mine.map((r) => r.gc_us_per_request);
      summary[s.name] = {
        cpu_us_per_request: { median: median(cpu), min: Math.min(...cpu), max: Math.max(...cpu) },
        allocated_bytes_per_request: {
          median: median(alloc),
          min: Math.min(...alloc),
          max: Math.max(...alloc),
        },
        gc_us_per_request: { median: median(gc), min: Math.min(...gc), max: Math.max(...gc) },
        pid: s.child.pid,
      };
    }
    if (servers.length === 2) {
      // Paired per round: head's figure over base's in the same round.
      const ratios = Array.from({ length: rounds }, (_, round) => {
        const [b, h] = ["base", "head"].map((t) => results.find((r) => r.tree === t && r.round === round)!);
        return Number((h!.cpu_us_per_request / b!.cpu_us_per_request).toFixed(3));
      });
      summary.head_over_base_cpu = { median: median(ratios), rounds: ratios };
    }
    console.log(JSON.stringify({ summary, rounds, requests, connections, wait }, null, 1));
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

await main();
