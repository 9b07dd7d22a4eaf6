/**
 * Would HTTP/2 cut the server's CPU per request on Coco's app path? (issue 17, one of its levers.)
 * A probe, not Coco: one child process serves, over mutual TLS as Coco's client port does (the
 * same TLS policy, ECDSA P-256 certificates made with Coco's own helpers, a client certificate
 * requested on every connection and every request authenticated by its certificate's SHA-256
 * fingerprint, read once per TLS connection and looked up in a user table per request, as
 * src/rpc/auth.ts does), `PUT /x?id=N` with a small JSON body read in full and parsed, answered
 * with a small JSON body and Coco's transaction header. This process drives it, closed loop, 64
 * concurrent clients, in these modes, alternated (ABC.. then ..CBA) over several rounds:
 *
 *   h1         node:https, HTTP/1.1 keep-alive, 64 connections (undici Pool, as bench/load.ts)
 *   h2xS       node:http2 secure server, compatibility API (req/res: what fastify or the
 *              node:http fast path in src/rpc/app-direct.ts would sit on), the 64 clients
 *              multiplexed over S = 1, 4, 16 and 64 node:http2 client sessions (h2x64: one
 *              stream at a time per session, as 64 separate clients would use h2)
 *   h2x4-naive as h2x4, but the certificate cache keyed on `req.socket` (a proxy made per
 *              stream), so the certificate is read and hashed on every request: what a port
 *              of auth.ts that missed `req.stream.session.socket` would cost
 *   h2x4-stream  node:http2's stream API (no req/res objects): the floor of an h2 app path
 *
 *   npx tsx bench/h2-probe.ts [--rounds 5] [--seconds 4] [--warmup 1.5] [--modes h1,h2x1,...]
 *
 * Prints one JSON object: per round and mode the requests answered, requests/s, the server
 * process's CPU (user + system, its own process.cpuUsage between two marks around the measured
 * window) per request in µs, this load generator's CPU per request, p50/p99 latency (ms); then per
 * mode the medians and the spread (min-max) over rounds, and `server_cpu_vs_h1`: each round's
 * server CPU per request over h1's in the same round (so the machine's drift between rounds
 * cancels); the machine's load average; `cert_read`: CPU µs to identify a caller when its
 * certificate is read and hashed (what every request pays if the cache misses) and when the
 * per-connection cache answers, measured once in a loop on the first connection. `cert_reads_per_req` counts certificates read and hashed
 * in the window per request (0 when every connection was set up in the warm-up; 1 in h2x4-naive).
 * Each mode's warm-up lasts `--warmup` seconds and until every client has had an answer (its TLS
 * handshake is done), and one short pass of every mode runs first, unreported (JIT); it prints
 * the negotiated TLS version and cipher on stderr, with each round as it ends. On a shared
 * machine requests/s and latencies follow the load; CPU µs per request is the comparable figure.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import https from "node:https";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import type { TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { createServiceIdentity, generateEcKeyPair, issueNodeCertificate } from "../src/crypto/index.ts";
import { CLIENT_TLS_POLICY, TX_HEADER } from "../src/rpc/index.ts";

const CLIENTS = 64;
const ALL_MODES = ["h1", "h2x1", "h2x4", "h2x16", "h2x64", "h2x4-naive", "h2x4-stream"] as const;
type Mode = (typeof ALL_MODES)[number];

interface Tls {
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  clientId: string;
}
interface Ports {
  h1: number;
  h2: number;
  h2stream: number;
}
type ToChild = { cmd: "mark"; naive?: boolean } | { cmd: "exit" };
type FromChild =
  | { kind: "ready"; ports: Ports }
  | { kind: "mark"; cpuUs: number; tls: string; refused: number; certReads: number; certCost?: CertCost };
/** CPU µs per request to identify the caller: certificate read and hashed, or found cached. */
interface CertCost {
  uncached_us: number;
  cached_us: number;
}

/**
 * Measured once, on the first connection (in the unreported first pass): what reading the client
 * certificate costs when nothing caches it (getPeerCertificate builds the whole certificate
 * object, its fingerprints included) against the per-connection cache hit and user lookup.
 */
function measureCertCost(socket: TLSSocket, users: Map<string, string>): CertCost {
  const n = 2000;
  const cache = new WeakMap<object, string>([[socket, "id"]]);
  const cpu = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  let found = 0;
  const t0 = cpu();
  for (let i = 0; i < n; i++) {
    const raw = socket.getPeerCertificate(false).raw;
    if (users.has(createHash("sha256").update(raw).digest("hex"))) found++;
  }
  const t1 = cpu();
  for (let i = 0; i < n; i++) if (users.has(cache.get(socket)!)) found++;
  const t2 = cpu();
  if (found > 2 * n) throw new Error("unreachable");
  return { uncached_us: r1((t1 - t0) / n), cached_us: r3((t2 - t1) / n) };
}

// ---------------------------------------------------------------------------------------------
// The server (child process).

async function serve(tls: Tls): Promise<void> {
  const options = {
    key: tls.server.key,
    cert: tls.server.cert,
    requestCert: true,
    rejectUnauthorized: false,
    ...CLIENT_TLS_POLICY,
  };
  // Users by certificate fingerprint (Coco reads its users table per request).
  const users = new Map<string, string>([[tls.clientId, "bench-user"]]);
  const certIds = new WeakMap<object, string | null>();
  let naive = false;
  let refused = 0;
  let certReads = 0;
  let lastTls = "";
  let certCost: CertCost | undefined;
  /** Who the caller is: the certificate read and hashed once per key (Coco: per TLS connection). */
  const callerOf = (key: object, socket: TLSSocket): string | undefined => {
    certCost ??= measureCertCost(socket, users);
    let id = certIds.get(key);
    if (id === undefined) {
      certReads++;
      const raw = socket.getPeerCertificate(false)?.raw;
      id = raw && raw.length > 0 ? createHash("sha256").update(raw).digest("hex") : null;
      certIds.set(key, id);
      lastTls = `${socket.getProtocol()} ${socket.getCipher().standardName}`;
    }
    return id === null ? undefined : users.get(id);
  };
  const answerOf = (url: string, body: Buffer, user: string | undefined): [number, string] => {
    if (user === undefined) {
      refused++;
      return [401, '{"error":{"code":"Unauthorized","message":"unknown certificate"}}'];
    }
    const id = Number(url.slice(url.indexOf("?id=") + 4));
    const value = JSON.parse(body.toString()) as { msg?: unknown };
    if (!Number.isInteger(id) || typeof value.msg !== "string") return [400, '{"error":"bad request"}'];
    return [200, `{"id":${id},"user":"${user}"}`];
  };
  type Req = {
    url?: string;
    on(e: string, f: (c: Buffer) => void): unknown;
    once(e: string, f: () => void): unknown;
  };
  type Res = { writeHead(s: number, h: Record<string, string | number>): unknown; end(b: string): unknown };
  const handle = (req: Req, res: Res, key: object, socket: TLSSocket) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.once("end", () => {
      const [status, body] = answerOf(req.url!, Buffer.concat(chunks), callerOf(key, socket));
      res.writeHead(status, {
        [TX_HEADER]: "2.42",
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    });
  };
  const h1 = https.createServer(
    { ...options, ALPNProtocols: ["http/1.1"], keepAliveTimeout: 30_000 },
    (req, res) => handle(req, res, req.socket, req.socket as TLSSocket),
  );
  const h2 = http2.createSecureServer(options, (req, res) => {
    const socket = req.stream.session!.socket as TLSSocket;
    handle(req, res, naive ? req.socket : socket, socket);
  });
  const h2stream = http2.createSecureServer(options);
  h2stream.on("stream", (stream, headers) => {
    const socket = stream.session!.socket as TLSSocket;
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => {
      const [status, body] = answerOf(
        String(headers[":path"]),
        Buffer.concat(chunks),
        callerOf(socket, socket),
      );
      stream.respond({
        ":status": status,
        [TX_HEADER]: "2.42",
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      stream.end(body);
    });
  });
  const listen = (s: { listen(p: number, h: string, f: () => void): unknown; address(): unknown }) =>
    new Promise<number>((ok) => s.listen(0, "127.0.0.1", () => ok((s.address() as { port: number }).port)));
  const ports = { h1: await listen(h1), h2: await listen(h2), h2stream: await listen(h2stream) };
  const send = (m: FromChild) => process.send!(m);
  process.on("message", (m: ToChild) => {
    if (m.cmd === "exit") process.exit(0);
    const cpu = process.cpuUsage();
    send({ kind: "mark", cpuUs: cpu.user + cpu.system, tls: lastTls, refused, certReads, certCost });
    naive = m.naive ?? false;
  });
  send({ kind: "ready", ports });
}

// ---------------------------------------------------------------------------------------------
// The load generator (this process).

/** One client's loop: send, await the full answer, repeat; `measuring()` says whether to count. */
interface Sender {
  send(i: number): Promise<number>;
  close(): Promise<void>;
}

const BODY = JSON.stringify({ msg: "m".repeat(64) });

function h1Sender(port: number, tls: Tls): Sender {
  const pool = new Pool(`https://127.0.0.1:${port}`, {
    connections: CLIENTS,
    pipelining: 1,
    connect: { ca: tls.ca, cert: tls.client.cert, key: tls.client.key },
  });
  return {
    async send(i) {
      const res = await pool.request({
        method: "PUT",
        path: `/x?id=${i}`,
        headers: { "content-type": "application/json" },
        body: BODY,
      });
      await res.body.text();
      return res.statusCode;
    },
    close: () => pool.close(),
  };
}

function h2Sender(port: number, tls: Tls, sessions: number): Sender {
  const open = Array.from({ length: sessions }, () =>
    http2.connect(`https://127.0.0.1:${port}`, { ca: tls.ca, cert: tls.client.cert, key: tls.client.key }),
  );
  let turn = 0;
  const length = String(Buffer.byteLength(BODY));
  return {
    send(i) {
      // The 64 clients share the sessions in turn (each session carries 64/S streams at a time).
      const session = open[turn++ % sessions]!;
      return new Promise((ok, fail) => {
        const stream = session.request({
          ":method": "PUT",
          ":path": `/x?id=${i}`,
          "content-type": "application/json",
          "content-length": length,
        });
        let status = 0;
        stream.once("response", (h) => {
          status = Number(h[":status"]);
        });
        stream.setEncoding("utf8");
        stream.on("data", () => {});
        stream.once("end", () => ok(status));
        stream.once("error", fail);
        stream.end(BODY);
      });
    },
    async close() {
      await Promise.all(open.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
    },
  };
}

class Server {
  private waiting: ((m: FromChild & { kind: "mark" }) => void) | undefined;
  constructor(
    readonly child: ChildProcess,
    readonly ports: Ports,
  ) {
    child.on("message", (m: FromChild) => {
      if (m.kind === "mark") this.waiting?.(m);
    });
  }
  mark(naive = false): Promise<FromChild & { kind: "mark" }> {
    return new Promise((ok) => {
      this.waiting = ok;
      this.child.send({ cmd: "mark", naive } satisfies ToChild);
    });
  }
}

interface Round {
  round: number;
  mode: Mode;
  requests: number;
  errors: number;
  rps: number;
  server_us_per_req: number;
  loadgen_us_per_req: number;
  p50_ms: number;
  p99_ms: number;
  cert_reads_per_req: number;
  loadavg_1m: number;
}

const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function runMode(
  server: Server,
  tls: Tls,
  mode: Mode,
  round: number,
  seconds: number,
  warmup: number,
): Promise<Round> {
  const p = server.ports;
  const sender =
    mode === "h1"
      ? h1Sender(p.h1, tls)
      : mode === "h2x4-stream"
        ? h2Sender(p.h2stream, tls, 4)
        : h2Sender(p.h2, tls, Number(/^h2x(\d+)/.exec(mode)![1]));
  const naive = mode === "h2x4-naive";
  let next = (round + 1) * 10_000_000;
  let measuring = false;
  let stop = false;
  let answered = 0;
  let errors = 0;
  const latencies: number[] = [];
  let connected = 0;
  const client = async () => {
    let first = true;
    while (!stop) {
      const sent = performance.now();
      const counted = measuring;
      const status = await sender.send(next++).catch(() => 0);
      if (first) {
        first = false;
        connected++;
      }
      if (!measuring) continue;
      answered++;
      if (status !== 200) errors++;
      if (counted) latencies.push(performance.now() - sent);
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);
  // Warm-up: its time, and every client answered once (its connection's handshake is done).
  const warmEnd = performance.now() + warmup * 1000;
  while (connected < CLIENTS || performance.now() < warmEnd) await new Promise((ok) => setTimeout(ok, 50));
  const before = await server.mark(naive);
  const lgBefore = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  await new Promise((ok) => setTimeout(ok, seconds * 1000));
  stop = true;
  await Promise.all(clients);
  const wall = (performance.now() - t0) / 1000;
  const lg = process.cpuUsage(lgBefore);
  const after = await server.mark();
  await sender.close();
  latencies.sort((a, b) => a - b);
  if (round === -1 && after.tls) process.stderr.write(`${mode}: ${after.tls}\n`);
  return {
    round,
    mode,
    requests: answered,
    errors,
    rps: Math.round(answered / wall),
    server_us_per_req: r1((after.cpuUs - before.cpuUs) / answered),
    loadgen_us_per_req: r1((lg.user + lg.system) / answered),
    p50_ms: r3(pct(latencies, 50)),
    p99_ms: r3(pct(latencies, 99)),
    cert_reads_per_req: r3((after.certReads - before.certReads) / answered),
    loadavg_1m: r1(loadavg()[0]!),
  };
}

function summary(rounds: Round[], modes: readonly Mode[]) {
  const stat = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor((s.length - 1) / 2)]!, min: s[0]!, max: s.at(-1)! };
  };
  const h1 = rounds.filter((r) => r.mode === "h1");
  return Object.fromEntries(
    modes.map((mode) => {
      const rs = rounds.filter((r) => r.mode === mode);
      // Paired with the h1 run of the same round, so a round's load level cancels.
      const vsH1 = rs.map(
        (r) => r.server_us_per_req / h1.find((h) => h.round === r.round)!.server_us_per_req,
      );
      return [
        mode,
        {
          rps: stat(rs.map((r) => r.rps)),
          server_us_per_req: stat(rs.map((r) => r.server_us_per_req)),
          server_cpu_vs_h1: h1.length > 0 ? stat(vsH1.map(r3)) : undefined,
          loadgen_us_per_req: stat(rs.map((r) => r.loadgen_us_per_req)),
          p50_ms: stat(rs.map((r) => r.p50_ms)),
          p99_ms: stat(rs.map((r) => r.p99_ms)),
          errors: rs.reduce((n, r) => n + r.errors, 0),
        },
      ];
    }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "5" },
      seconds: { type: "string", default: "4" },
      warmup: { type: "string", default: "1.5" },
      modes: { type: "string", default: ALL_MODES.join(",") },
      serve: { type: "boolean", default: false },
    },
  });
  if (values.serve) {
    process.once("message", (tls: Tls) => void serve(tls));
    return;
  }
  const modes = values.modes.split(",") as Mode[];
  for (const m of modes)
    if (!ALL_MODES.includes(m)) throw new Error(`unknown mode ${m}: one of ${ALL_MODES}`);
  if (modes.includes("h2x4-naive") && !modes.includes("h1"))
    throw new Error("h2x4-naive is compared with h1");
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const tls = await makeCerts();
  const child = fork(fileURLToPath(import.meta.url), ["--serve"], {
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const ports = await new Promise<Ports>((ok, fail) => {
    child.once("exit", (code) => fail(new Error(`the server exited (${code})`)));
    child.on("message", (m: FromChild) => m.kind === "ready" && ok(m.ports));
    child.send(tls);
  });
  const server = new Server(child, ports);
  const loadStart = loadavg().map(r1);
  // One short pass of every mode first, not reported: the first mode run would pay for the JIT.
  for (const mode of modes) await runMode(server, tls, mode, -1, 1, 0.5);
  const results: Round[] = [];
  const certCost = (await server.mark()).certCost;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      const r = await runMode(server, tls, mode, round, seconds, warmup);
      results.push(r);
      process.stderr.write(`${JSON.stringify(r)}\n`);
    }
  }
  child.removeAllListeners("exit");
  child.send({ cmd: "exit" } satisfies ToChild);
  const out = {
    command: `npx tsx bench/h2-probe.ts --rounds ${rounds} --seconds ${seconds} --warmup ${warmup} --modes ${modes.join(",")}`,
    clients: CLIENTS,
    node: process.version,
    loadavg_start: loadStart,
    loadavg_end: loadavg().map(r1),
    cert_read: certCost,
    summary: summary(results, modes),
    rounds: results,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

/** A P-256 service CA issuing the server's and the client's certificates (as bench/certs.ts). */
async function makeCerts(): Promise<Tls> {
  const now = new Date();
  const serial = () => crypto.getRandomValues(new Uint8Array(16));
  const ca = await createServiceIdentity({
    now,
    serial: serial(),
    subjectName: "Probe CA",
    curve: "secp256r1",
  });
  const issue = async () => {
    const key = generateEcKeyPair("secp256r1");
    const cert = await issueNodeCertificate({
      service: ca,
      nodePublicKeyPem: key.publicKeyPem,
      now,
      serial: serial(),
    });
    return { cert, key: key.privateKeyPem };
  };
  const client = await issue();
  const der = Buffer.from(client.cert.replace(/-----[^-]+-----|\s/g, ""), "base64");
  return {
    ca: ca.certPem,
    server: await issue(),
    client,
    clientId: createHash("sha256").update(der).digest("hex"),
  };
}

await main();
