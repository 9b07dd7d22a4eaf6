/**
 * The primary's CPU per request, an ERC-20 transfer against a logging write, on the same node
 * under the same load: one single-node service with the EVM on (the logging app beside it), in a
 * child process, driven from this process by keep-alive TLS connections with client
 * certificates, every request answered on commit (`x-coco-wait: commit`), as bench/evm.ts and
 * `npm run bench` send. Rounds alternate the two kinds of request (and, with `--base DIR`, two
 * trees), so the machine's load falls on all alike:
 *
 *   npx tsx bench/evm-path.ts [--base DIR] [--rounds 5] [--requests 1000] [--connections 64]
 *     [--kinds log,evm] [--cpu-prof DIR] [--base-node-args="--flag ..."]
 *
 * `log` is the logging app's `PUT /app/log/private?id=N` (one private write of ~80 bytes); `evm`
 * is `eth_sendRawTransaction` of a pre-signed ERC-20 transfer (one lane of transfers in nonce
 * order per connection). For each round it prints the server's CPU per request (user + system
 * from its own `process.cpuUsage`, µs; GC threads count), GC time, bytes allocated per request
 * (freed by GC plus the heap's growth: independent of the load) and the ledger's bytes per
 * request (the node's directory, before and after). A single node has no replication: what differs
 * between the two kinds here is the EVM's work and what its larger write set costs the KV, the
 * ledger and the signatures. `DIR` is another checkout with node_modules; its own src/ and
 * test/helpers/cluster.ts start its node (`--base .` with `--base-node-args` compares Node flags).
 */
import { type ChildProcess, fork } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";
import { Pool } from "undici";

interface Ready {
  kind: "ready";
  port: number;
  tls: { ca: string; cert: string; key: string };
}
interface Mark {
  kind: "mark";
  cpuUs: number;
  gcUs: number;
  allocatedBytes: number;
  ledgerBytes: number;
  handlerUs: number;
  signatures: number;
  /** Monotonic µs, as a CPU profile's timestamps (for bench/evm-profile.ts --from --to). */
  hrUs: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Bytes of every file below `dir` (the node's ledger, snapshots and keys). */
function bytesBelow(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += bytesBelow(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// The server side: a child process running one EVM node of `tree`.

/** CPU (µs, process-wide) spent between each app handler's start and its end, summed. */
let handlerUs = 0;

type AnyExecutor = { match: (...args: never[]) => unknown };
/**
 * The executor with its endpoints' handlers timed: the app's own work (for the EVM: decoding,
 * execution, records) apart from Coco's around it. Handlers that wait on nothing but microtasks
 * are counted whole; other requests' microtasks that run in between are counted too (a small
 * overcount).
 */
function timed<E extends AnyExecutor>(executor: E): E {
  const wrapped = new WeakSet<object>();
  return Object.assign(Object.create(executor) as E, {
    match(...args: never[]) {
      const found = executor.match(...args) as { endpoint?: { handler: (ctx: unknown) => Promise<unknown> } };
      const endpoint = found?.endpoint;
      if (endpoint && !wrapped.has(endpoint)) {
        wrapped.add(endpoint);
        const handler = endpoint.handler.bind(endpoint);
        endpoint.handler = async (ctx: unknown) => {
          const c = process.cpuUsage();
          try {
            return await handler(ctx);
          } finally {
            const u = process.cpuUsage(c);
            handlerUs += u.user + u.system;
          }
        };
      }
      return found;
    },
  });
}

async function serve(tree: string, addresses: string[]): Promise<void> {
  const { Cluster } = (await import(
    resolve(tree, "test/helpers/cluster.ts")
  )) as typeof import("../test/helpers/cluster.ts");
  const { passProposal } = (await import(
    resolve(tree, "test/helpers/network.ts")
  )) as typeof import("../test/helpers/network.ts");
  const { freePort } = (await import(
    resolve(tree, "test/helpers/ports.ts")
  )) as typeof import("../test/helpers/ports.ts");
  const { loggingApp } = (await import(
    resolve(tree, "samples/logging/app.ts")
  )) as typeof import("../samples/logging/app.ts");
  const { evmExecutorFor } = (await import(
    resolve(tree, "src/evm/index.ts")
  )) as typeof import("../src/evm/index.ts");
  const node = (await import(resolve(tree, "src/node/index.ts"))) as typeof import("../src/node/index.ts");
  const cluster = await Cluster.create();
  cluster.start = async (name, { rpc, ...settings }) => {
    const config = node.parseConfig(
      {
        dir: name,
        rpc: { address: `127.0.0.1:${await freePort()}`, ...(rpc as object | undefined) },
        nodeAddress: `127.0.0.1:${await freePort()}`,
        app: "logging",
        evm: true,
        log: { level: "error" },
        ...settings,
      },
      cluster.dir,
    );
    const logger = node.createLogger({ level: "error", format: "json" });
    const evm = evmExecutorFor(node.realEnvironment);
    const running = await node.runNode(config, node.realEnvironment, logger, [
      timed(loggingApp),
      timed(evm.executor),
    ]);
    evm.bind(running.node);
    cluster.nodes.push(running);
    return running;
  };
  // Snapshots are another stage; kept out of the windows so they add no noise.
  const first = await cluster.startService({ snapshots: { txInterval: 100_000_000 } });
  await cluster.untilOpen();
  await passProposal(await cluster.gov(), "set_user", {
    cert: cluster.user.certPem,
    user_data: { ethereum_addresses: addresses },
  });
  let profiler: v8.GCProfiler | undefined;
  let usedAtStart = 0;
  const ledgerDir = join(cluster.dir, "n0");
  const signatures = () =>
    (first.node as { signing?: { stats?: { signatures: number } } }).signing?.stats?.signatures ?? 0;
  const send = (m: Ready | Mark) => process.send?.(m);
  process.on("message", async (raw) => {
    const message = raw as { cmd: "start" | "stop" | "exit" };
    if (message.cmd === "start") {
      profiler = new v8.GCProfiler();
      profiler.start();
      usedAtStart = v8.getHeapStatistics().used_heap_size;
      const cpu = process.cpuUsage();
      send({
        kind: "mark",
        cpuUs: cpu.user + cpu.system,
        gcUs: 0,
        allocatedBytes: 0,
        ledgerBytes: bytesBelow(ledgerDir),
        handlerUs,
        signatures: signatures(),
        hrUs: Number(process.hrtime.bigint() / 1000n),
      });
    } else if (message.cmd === "stop") {
      const cpu = process.cpuUsage();
      const usedAtEnd = v8.getHeapStatistics().used_heap_size;
      const stats = profiler?.stop()?.statistics ?? [];
      let freed = 0;
      let gcUs = 0;
      for (const s of stats) {
        freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
        gcUs += s.cost;
      }
      send({
        kind: "mark",
        cpuUs: cpu.user + cpu.system,
        gcUs,
        allocatedBytes: freed + usedAtEnd - usedAtStart,
        ledgerBytes: bytesBelow(ledgerDir),
        handlerUs,
        signatures: signatures(),
        hrUs: Number(process.hrtime.bigint() / 1000n),
      });
    } else {
      await cluster.stop();
      process.exit(0);
    }
  });
  send({
    kind: "ready",
    port: first.port,
    tls: {
      ca: first.node.identity.serviceCertPem,
      cert: cluster.user.certPem,
      key: cluster.user.privateKeyPem,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The driving side.

class Server {
  private waiting: ((m: Mark) => void) | undefined;
  readonly pool: Pool;
  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly ready: Ready,
    connections: number,
  ) {
    child.on("message", (m) => {
      if ((m as Mark).kind === "mark") this.waiting?.(m as Mark);
    });
    this.pool = new Pool(`https://127.0.0.1:${ready.port}`, {
      connections,
      pipelining: 1,
      connect: ready.tls,
    });
  }

  static start(
    name: string,
    tree: string,
    addresses: string[],
    connections: number,
    profileDir: string | undefined,
    nodeArgs: string[],
  ): Promise<Server> {
    const child = fork(
      fileURLToPath(import.meta.url),
      ["--serve", tree, "--addresses", addresses.join(",")],
      {
        execArgv: [
          ...process.execArgv,
          ...nodeArgs,
          ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${resolve(profileDir, name)}`] : []),
        ],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      },
    );
    return new Promise((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: the node did not start in 180 s`)), 180_000);
      child.once("exit", (code) => reject(new Error(`${name}: the server exited (${code})`)));
      child.on("message", function onReady(m) {
        if ((m as Ready).kind !== "ready") return;
        clearTimeout(timer);
        child.off("message", onReady);
        resolveReady(new Server(name, child, m as Ready, connections));
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
    await this.pool.close();
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ cmd: "exit" });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

const WAIT = { "content-type": "application/json", "x-coco-wait": "commit" };

async function sendRaw(pool: Pool, raw: string): Promise<unknown> {
  const res = await pool.request({
    method: "POST",
    path: "/app/eth",
    headers: WAIT,
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] }),
  });
  const body = (await res.body.json()) as { result?: unknown; error?: { message: string } };
  if (res.statusCode !== 200 || body.error) throw new Error(body.error?.message ?? `HTTP ${res.statusCode}`);
  return body.result;
}

/** `count` logging writes over `connections` connections; returns the failures. */
async function driveLog(pool: Pool, connections: number, first: number, count: number): Promise<number> {
  let next = first;
  let errors = 0;
  const body = JSON.stringify({ msg: "x".repeat(64) });
  const client = async () => {
    while (next < first + count) {
      const i = next++;
      try {
        const res = await pool.request({
          method: "PUT",
          path: `/app/log/private?id=${i}`,
          headers: WAIT,
          body,
        });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, client));
  return errors;
}

/** Each lane's transfers from nonce `from` on, `per` of them, the lanes at once. */
async function driveEvm(pool: Pool, lanes: string[][], from: number, per: number): Promise<number> {
  let errors = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      for (const raw of lane.slice(from, from + per)) {
        try {
          await sendRaw(pool, raw);
        } catch (e) {
          if (errors++ === 0) console.error((e as Error).message);
        }
      }
    }),
  );
  return errors;
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
      addresses: { type: "string" },
      base: { type: "string" },
      rounds: { type: "string", default: "5" },
      requests: { type: "string", default: "1024" },
      connections: { type: "string", default: "64" },
      kinds: { type: "string", default: "log,evm" },
      "cpu-prof": { type: "string" },
      "base-node-args": { type: "string" },
    },
  });
  if (values.serve) return serve(values.serve, (values.addresses ?? "").split(","));
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const per = Math.ceil(Number(values.requests) / connections);
  const requests = per * connections;
  const kinds = values.kinds.split(",") as Array<"log" | "evm">;
  if (kinds.some((k) => k !== "log" && k !== "evm")) throw new Error("--kinds: log and/or evm");
  const profileDir = values["cpu-prof"] ? resolve(values["cpu-prof"]) : undefined;
  const trees: Array<[string, string]> = [["head", resolve(here, "..")]];
  if (values.base) trees.unshift(["base", resolve(values.base)]);

  // The load, signed once: a deployer, one sender per connection, each lane's transfers in nonce
  // order (the warm-up's first, then each round's).
  const { compile } = await import("../test/evm/contracts.ts");
  const token = compile().PrivateToken!;
  const base = { chainId: 0xc0c0n, gasPrice: 0n, type: 0 };
  const deployer = new Wallet(Wallet.createRandom().privateKey);
  const wallets = Array.from({ length: connections }, () => new Wallet(Wallet.createRandom().privateKey));
  const factory = new ContractFactory(token.abi as never, token.bytecode);
  const deploy = await deployer.signTransaction({
    ...base,
    nonce: 0,
    gasLimit: 5_000_000n,
    data: (await factory.getDeployTransaction(10n ** 30n)).data,
  });
  const tokenAddress = getCreateAddress({ from: deployer.address, nonce: 0 });
  const erc20 = new Interface(token.abi as never);
  const transfer = (to: string, amount: bigint) => erc20.encodeFunctionData("transfer", [to, amount]);
  const funding = await Promise.all(
    wallets.map((w, i) =>
      deployer.signTransaction({
        ...base,
        nonce: i + 1,
        to: tokenAddress,
        gasLimit: 100_000n,
        data: transfer(w.address, 10n ** 24n),
      }),
    ),
  );
  const laneLength = per * (rounds + 1) * (kinds.includes("evm") ? 1 : 0);
  const lanes = await Promise.all(
    wallets.map(async (w, s) => {
      const lane: string[] = [];
      for (let k = 0; k < laneLength; k++)
        lane.push(
          await w.signTransaction({
            ...base,
            nonce: k,
            to: tokenAddress,
            gasLimit: 100_000n,
            data: transfer(wallets[(s + k + 1) % connections]!.address, 1n),
          }),
        );
      return lane;
    }),
  );
  const addresses = [deployer.address, ...wallets.map((w) => w.address)];

  const servers: Server[] = [];
  try {
    for (const [name, tree] of trees) {
      const nodeArgs = name === "base" ? (values["base-node-args"]?.split(" ").filter(Boolean) ?? []) : [];
      servers.push(await Server.start(name, tree, addresses, connections, profileDir, nodeArgs));
    }
    // Setup and warm-up (not measured): the token, the senders' funds, one segment of each kind.
    for (const s of servers) {
      await sendRaw(s.pool, deploy);
      for (const f of funding) await sendRaw(s.pool, f);
      if (kinds.includes("log")) await driveLog(s.pool, connections, 0, requests);
      if (kinds.includes("evm")) await driveEvm(s.pool, lanes, 0, per);
    }
    const results: Array<
      Record<string, unknown> & { tree: string; kind: string; round: number; cpu_us: number }
    > = [];
    for (let round = 1; round <= rounds; round++) {
      const order = servers.flatMap((s) => kinds.map((k) => [s, k] as const));
      if (round % 2 === 0) order.reverse();
      for (const [server, kind] of order) {
        const before = await server.mark("start");
        const started = performance.now();
        const errors =
          kind === "log"
            ? await driveLog(server.pool, connections, round * requests, requests)
            : await driveEvm(server.pool, lanes, round * per, per);
        const seconds = (performance.now() - started) / 1000;
        const after = await server.mark("stop");
        const r = {
          tree: server.name,
          kind,
          round,
          cpu_us: Math.round((after.cpuUs - before.cpuUs) / requests),
          handler_us: Math.round((after.handlerUs - before.handlerUs) / requests),
          requests_per_signature: Number(
            (requests / Math.max(1, after.signatures - before.signatures)).toFixed(1),
          ),
          gc_us: Number((after.gcUs / requests).toFixed(1)),
          allocated_bytes: Math.round(after.allocatedBytes / requests),
          ledger_bytes: Math.round((after.ledgerBytes - before.ledgerBytes) / requests),
          per_s_wall: Math.round(requests / seconds),
          errors,
          window_us: [before.hrUs, after.hrUs],
        };
        results.push(r);
        console.log(JSON.stringify(r));
      }
    }
    const summary: Record<string, unknown> = {};
    for (const s of servers)
      for (const k of kinds) {
        const mine = results.filter((r) => r.tree === s.name && r.kind === k);
        const pick = (f: string) => {
          const xs = mine.map((r) => r[f] as number);
          return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
        };
        summary[`${s.name} ${k}`] = {
          cpu_us: pick("cpu_us"),
          handler_us: pick("handler_us"),
          requests_per_signature: pick("requests_per_signature"),
          gc_us: pick("gc_us"),
          allocated_bytes: pick("allocated_bytes"),
          ledger_bytes: pick("ledger_bytes"),
          per_s_wall: pick("per_s_wall"),
        };
      }
    if (servers.length === 2)
      for (const k of kinds) {
        const ratios = Array.from({ length: rounds }, (_, i) => {
          const [b, h] = ["base", "head"].map(
            (t) => results.find((r) => r.tree === t && r.kind === k && r.round === i + 1)!,
          );
          return Number((h!.cpu_us / b!.cpu_us).toFixed(3));
        });
        summary[`${k}: head over base`] = { median: median(ratios), rounds: ratios };
      }
    console.log(JSON.stringify({ summary, rounds, requests, connections }, null, 1));
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

await main();
