/**
 * The nemesis's means of harm, each shown to do what it says: nftables partitions between
 * namespaces cut TCP (both ways, one way, healed), the relay delays by its setting, black-holes and
 * cuts, and the dev clock file shifts a node's `realEnvironment.now()` while it runs.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { budget, sleep } from "../e2e/waits.ts";
import { Hosts, namespacesUnavailable } from "./hosts.ts";
import { Relay } from "./relay.ts";

const unavailable = namespacesUnavailable();

/**
 * How long a probe waits for the echo before it calls the peer unreachable: an idle machine's
 * 800 ms stretched by the load, so a slow echo is not taken for a cut (a cut one never answers).
 */
const silence = () => budget(800);

/** Connects from host `from`'s namespace to `address:port`; true if the echo came back. */
function reaches(hosts: Hosts, from: number, address: string, port: number): boolean {
  const script = `const s=require("net").connect(${port},"${address}");s.setTimeout(${silence()},()=>process.exit(1));s.on("data",()=>process.exit(0));s.on("error",()=>process.exit(1));s.write("x")`;
  const argv = hosts.wrap(hosts.hosts[from]!, [process.execPath, "-e", script]);
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: "ignore", timeout: budget(5_000) });
    return true;
  } catch {
    return false;
  }
}

test("nftables partitions cut TCP between namespaces, both ways or one way, until healed", {
  skip: unavailable ?? false,
  timeout: budget(60_000),
}, async () => {
  const hosts = Hosts.create(3);
  const servers: ChildProcess[] = [];
  after(() => {
    for (const s of servers) s.kill("SIGKILL");
    hosts.remove();
  });
  // An echo server in each namespace.
  for (const h of hosts.hosts) {
    const argv = hosts.wrap(h, [
      process.execPath,
      "-e",
      `require("net").createServer(s=>s.pipe(s)).listen(7100,"${h.address}",()=>console.log("up"))`,
    ]);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
    servers.push(child);
    await new Promise((resolve) => child.stdout!.once("data", resolve));
  }
  const [a, b, c] = hosts.hosts.map((h) => h.address) as [string, string, string];
  assert.ok(reaches(hosts, 1, a, 7100), "node1 reaches node0 before any fault");
  hosts.partition([[0], [1, 2]]);
  assert.ok(!reaches(hosts, 1, a, 7100), "node1 cannot reach node0 across the partition");
  assert.ok(!reaches(hosts, 0, b, 7100), "nor node0 node1");
  assert.ok(reaches(hosts, 1, c, 7100), "node1 still reaches node2 on its side");
  assert.ok(await reachableFromTest(a), "the test's clients still reach the cut-off node");
  hosts.oneWay(0, 1);
  assert.ok(!reaches(hosts, 0, b, 7100), "one way: node0's packets to node1 are dropped");
  assert.ok(reaches(hosts, 2, b, 7100), "others still reach node1");
  hosts.heal();
  assert.ok(reaches(hosts, 0, b, 7100) && reaches(hosts, 1, a, 7100), "healed both ways");
});

function reachableFromTest(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(7100, address);
    s.setTimeout(silence(), () => {
      s.destroy();
      resolve(false);
    });
    s.on("data", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
    s.write("x");
  });
}

test("the relay delays each direction by its setting, black-holes and cuts", {
  timeout: budget(30_000),
}, async () => {
  const echo: Server = createServer((s) => {
    s.on("error", () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  const port = (echo.address() as { port: number }).port;
  const relay = new Relay({ host: "127.0.0.1", port });
  const relayPort = await relay.listen("127.0.0.1");
  after(async () => {
    await relay.close();
    echo.close();
  });
  const socket = connect(relayPort, "127.0.0.1");
  // The cut at the end resets it.
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  const roundTrip = async () => {
    const t0 = performance.now();
    socket.write("ping");
    await new Promise((resolve) => socket.once("data", resolve));
    return performance.now() - t0;
  };
  // The fastest of a few round trips, so a loaded machine's scheduling delays do not count as
  // the relay's (CI at load 20 saw a single undelayed round trip above 40 ms).
  const fastest = async (n: number) => {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) best = Math.min(best, await roundTrip());
    return best;
  };
  const direct = await fastest(5);
  relay.link = { ...relay.link, delayMs: 50 };
  const rtt = await fastest(3);
  // Timers never fire early: 50 ms each way cannot take less than 100 ms.
  assert.ok(rtt >= 99, `50 ms each way makes a round trip of at least 100 ms (${rtt.toFixed(0)})`);
  // An idle machine's ceiling stretched by the load: it catches a delay in the wrong unit (50 s),
  // not a starved event loop.
  const ceiling = budget(1_000);
  assert.ok(rtt < ceiling, `and not seconds (${rtt.toFixed(0)} ms, ceiling ${ceiling} ms)`);
  assert.ok(direct < rtt - 90, `no delay by default (${direct.toFixed(0)} ms against ${rtt.toFixed(0)})`);
  relay.link = { ...relay.link, delayMs: 0, blackhole: true };
  const lost = await Promise.race([roundTrip().then(() => "answered"), sleep(300).then(() => "silent")]);
  assert.equal(lost, "silent", "a black hole delivers nothing");
  const closed = new Promise((resolve) => socket.once("close", resolve));
  relay.cut();
  await closed;
  assert.ok(relay.stats.resets > 0);
});

test("the relay keeps a stream's bytes in order under delay and jitter", {
  timeout: budget(30_000),
}, async () => {
  // A relay that reordered chunks broke TLS between nodes ("bad record mac") whenever two chunks
  // were due within a millisecond of each other: at 100 ms RTT nothing committed.
  const received: Buffer[] = [];
  let receivedBytes = 0;
  const sink: Server = createServer((s) => {
    s.on("error", () => {});
    s.on("data", (chunk: Buffer) => received.push(chunk));
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const relay = new Relay({ host: "127.0.0.1", port: (sink.address() as { port: number }).port });
  relay.link = { ...relay.link, delayMs: 50, jitterMs: 5 };
  const socket = connect(await relay.listen("127.0.0.1"), "127.0.0.1");
  socket.setNoDelay(true);
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  const sent: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    const chunk = Buffer.from(`${i.toString().padStart(4, "0")};`);
    sent.push(chunk);
    socket.write(chunk);
    if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const expected = Buffer.concat(sent);
  // Until every byte is in (an idle machine's 5 s, stretched by the load), then compared.
  const deadline = Date.now() + budget(5_000);
  while (receivedBytes < expected.length && Date.now() < deadline) {
    await sleep(50);
    receivedBytes = received.reduce((n, c) => n + c.length, 0);
  }
  socket.destroy();
  await relay.close();
  sink.close();
  assert.equal(Buffer.concat(received).toString(), expected.toString());
});

test("COCO_DEV_CLOCK_FILE shifts realEnvironment.now() while the process runs", {
  timeout: budget(30_000),
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-clock-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "clock");
  writeFileSync(file, "3600000\n");
  const env = new URL("../../src/node/env.ts", import.meta.url).href;
  const script = `
    const { realEnvironment } = await import(${JSON.stringify(env)});
    const fs = await import("node:fs");
    // Each shifted reading between two system clock readings: [offset from before, from after].
    const offset = () => {
      const before = Date.now();
      const shifted = realEnvironment.now();
      return [shifted - Date.now(), shifted - before];
    };
    const first = offset();
    fs.writeFileSync(${JSON.stringify(file)}, "-5000\\n");
    await new Promise((r) => setTimeout(r, 250));
    const second = offset();
    console.log(JSON.stringify([first, second]));`;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    env: { ...process.env, COCO_DEV_CLOCK_FILE: file },
    encoding: "utf8",
  });
  // The shift lies between the offsets from the system clock read just after and just before the
  // shifted one (a preempted process widens that window; it does not move the shift).
  const [first, second] = JSON.parse(out) as [[number, number], [number, number]];
  const within = ([low, high]: [number, number], shift: number) => low <= shift && shift <= high;
  assert.ok(within(first, 3_600_000), `an hour ahead (${first})`);
  assert.ok(within(second, -5_000), `then five seconds behind (${second})`);
});
