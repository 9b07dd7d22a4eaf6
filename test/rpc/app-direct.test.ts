/**
 * The direct `/app` path (src/rpc/app-direct.ts) answers byte for byte as fastify does: one node,
 * two more HTTPS servers over it, one with the direct path and one without; every request goes to
 * both over real TLS and the raw answers (status line, headers in order, body) must be equal but
 * for the Date header and the transaction id. Requests the direct path leaves to fastify (413,
 * 415, a stopping node's 503, ...) are sent too: they must still be answered as before.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect } from "node:tls";
import { loggingApp } from "../../samples/logging/app.ts";
import { defineApp, type Executor, ExecutorRegistry, HttpError } from "../../src/apps/index.ts";
import { createLogger } from "../../src/node/index.ts";
import { rpcPort } from "../../src/node/rpc-port.ts";
import type { RunningNode } from "../../src/node/run.ts";
import { createRpcServer } from "../../src/rpc/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";

const MAX_BODY = 4096;

/** Opened by the test: until then `/held` waits (at most 20 s). */
let release: () => void = () => {};
let held = Promise.resolve();

const shapes = defineApp("shapes", (a) => {
  const anyone = { auth: ["no_auth" as const], mode: "readonly" as const };
  a.get("/shapes/headers", anyone, () => ({
    status: 201,
    headers: { "X-Mixed-Case": "one", "x-mixed-case": "two", "set-cookie": "a=1" },
    body: "text body",
  }));
  a.get("/shapes/weird-type", anyone, () => ({ headers: { "content-type": "weird" }, body: "w" }));
  a.get("/shapes/no-content", anyone, () => ({ status: 204, body: "dropped" }));
  a.get("/shapes/empty", anyone, () => ({}));
  a.get("/shapes/bytes", anyone, () => ({ body: new Uint8Array([0, 1, 2, 255]) }));
  a.get("/shapes/length", anyone, () => ({ headers: { "content-length": "99" }, body: "short" }));
  a.get("/shapes/error", anyone, () => {
    throw new HttpError(418, "Teapot", "short and stout");
  });
  a.post("/shapes/echo", anyone, ({ request }) => ({ body: { got: request.json() } }));
  a.post("/shapes/held", { ...anyone, mode: "readwrite" }, async () => {
    await Promise.race([held, new Promise((r) => setTimeout(r, 20_000))]);
    return { body: "held" };
  });
});

/** An executor that fails inside the node (not in a handler): fastify's error handler answers. */
const broken: Executor = {
  name: "broken",
  match(_method, path) {
    if (path === "/boom") throw new Error("a bug in an executor");
    return undefined;
  },
};

interface Answer {
  raw: string;
  status: number;
}

/**
 * Sends `requests` (raw HTTP/1.1, in turn, on one connection) to `port` and returns each answer
 * as received, read by its Content-Length.
 */
function exchange(
  port: number,
  ca: string,
  cert: string,
  key: string,
  requests: string[],
): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, cert, key, servername: "localhost" });
    const answers: Answer[] = [];
    let buffer = Buffer.alloc(0);
    const sendNext = () => {
      if (answers.length === requests.length) {
        socket.end();
        resolve(answers);
      } else socket.write(requests[answers.length]!);
    };
    socket.on("secureConnect", sendNext);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const raw = buffer.subarray(0, end + 4 + length).toString("latin1");
        buffer = buffer.subarray(end + 4 + length);
        answers.push({ raw, status: Number(head.split(" ")[1]) });
        sendNext();
      }
    });
    socket.on("error", reject);
    // A node that closes the connection (after a 413, say) ends the exchange with what it answered.
    socket.on("close", () => resolve(answers));
    setTimeout(() => {
      socket.destroy();
      reject(new Error("no answer within 15 s"));
    }, 15_000).unref();
  });
}

/** The answer without what differs between two answers to the same request: the date, the TxID. */
function normalized(raw: string): string {
  return raw
    .replace(/\r\nDate: [^\r]*/gi, "\r\nDate: -")
    .replace(/(x-ms-ccf-transaction-id: )\d+\.\d+/gi, "$1V.S")
    .replace(/\b\d+\.\d+(?= was not committed)/g, "V.S");
}

function request(method: string, path: string, headers: Record<string, string> = {}, body = ""): string {
  const lines = [`${method} ${path} HTTP/1.1`, "Host: localhost"];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== "" || ["PUT", "POST", "PATCH"].includes(method))
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

const json = { "Content-Type": "application/json" };

describe("the direct /app path answers as fastify does", () => {
  let cluster: Cluster;
  let node: RunningNode;
  let ca: string;
  const servers: Array<{ port: number; close(): Promise<void> }> = [];
  let direct = 0;
  let viaFastify = 0;

  before(async () => {
    cluster = await Cluster.create();
    cluster.apps.push(shapes);
    node = await cluster.startService({ rpc: { maxBodyBytes: MAX_BODY } });
    await cluster.untilOpen();
    ca = node.node.identity.serviceCertPem;
    const log = createLogger({ level: "silent", format: "json" });
    const tls = { key: node.node.identity.nodePrivateKeyPem, cert: node.node.identity.nodeCertPem };
    for (const directApp of [true, false]) {
      const executors = new ExecutorRegistry([shapes, broken, loggingApp]);
      const server = createRpcServer(rpcPort(node.node), executors, log, tls, { directApp });
      // Counts the requests fastify answered, to show the direct server took the others itself.
      server.addHook("onResponse", (_req, _reply, done) => {
        if (directApp) viaFastify++;
        done();
      });
      await server.listen({ host: "127.0.0.1", port: 0 });
      const address = server.server.address();
      servers.push({
        port: typeof address === "object" && address ? address.port : 0,
        close: () => server.close(),
      });
    }
  });
  after(async () => {
    release();
    for (const s of servers) await s.close().catch(() => {});
    await cluster.stop();
  });

  /** Sends the same requests to both servers; returns the direct server's answers. */
  async function same(requests: string[], what: string): Promise<Answer[]> {
    const { certPem, privateKeyPem } = cluster.user;
    const before = viaFastify;
    const a = await exchange(servers[0]!.port, ca, certPem, privateKeyPem, requests);
    direct += requests.length - (viaFastify - before);
    const b = await exchange(servers[1]!.port, ca, certPem, privateKeyPem, requests);
    assert.equal(a.length, b.length, `${what}: as many answers on both paths`);
    for (let i = 0; i < requests.length; i++) {
      assert.equal(
        normalized(a[i]!.raw),
        normalized(b[i]!.raw),
        `${what} #${i}: ${requests[i]!.split("\r\n")[0]}`,
      );
    }
    return a;
  }

  test("writes and reads of the logging app, on one keep-alive connection", async () => {
    const body = JSON.stringify({ msg: "hello" });
    const answers = await same(
      [
        request("PUT", "/app/log/private?id=1", { ...json, "x-coco-wait": "commit" }, body),
        request("GET", "/app/log/private?id=1"),
        request("GET", "/app/log/private?id=99"),
        request("PUT", "/app/log/private", json, body),
        request("PUT", "/app/log/private?id=2", json, "{not json"),
        request("PUT", "/app/log/private?id=2", {}, ""),
        request("PUT", "/app/log/private?id=2", { "Content-Type": "application/json; charset=utf-8" }, body),
        request("DELETE", "/app/log/private?id=2"),
        request("POST", "/app/nowhere", json, "{}"),
        request("PATCH", "/app/log/private?id=1", json, body),
        request("GET", "/app/log/private?id=1", { "x-coco-wait": "soon" }),
        request("GET", "/app/log/private/range?limit=2&aftr=1"),
      ],
      "logging",
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 404, 400, 400, 400, 200, 200, 404, 405, 400, 400],
    );
    assert.match(answers[1]!.raw, /\{"msg":"hello"\}$/);
  });

  test("answers of every shape: headers, content types, 204, bytes, empty, app errors, 500", async () => {
    const answers = await same(
      [
        request("GET", "/app/shapes/headers"),
        request("GET", "/app/shapes/weird-type"),
        request("GET", "/app/shapes/no-content"),
        request("GET", "/app/shapes/empty"),
        request("GET", "/app/shapes/bytes"),
        request("GET", "/app/shapes/length"),
        request("GET", "/app/shapes/error"),
        request("POST", "/app/shapes/echo", json, '{"a":[1,2]}'),
        request("GET", "/app/boom"),
      ],
      "shapes",
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [201, 200, 204, 200, 200, 200, 418, 200, 500],
    );
    assert.match(answers[0]!.raw, /x-mixed-case: two\r\n/);
    assert.match(answers[1]!.raw, /content-type: application\/octet-stream\r\n/);
    assert.match(answers[8]!.raw, /"code":"InternalError","message":"internal error"/);
  });

  test("the requests fastify keeps answer as before: 413, 415, chunked, %, repeated query, /app/tx", async () => {
    const chunked = `${request("PUT", "/app/log/private?id=3", {
      ...json,
      "Transfer-Encoding": "chunked",
    }).replace("Content-Length: 0\r\n", "")}b\r\n{"msg":"c"}\r\n0\r\n\r\n`;
    const cases: Array<[string, number]> = [
      [request("PUT", "/app/log/private?id=3", json, JSON.stringify({ msg: "x".repeat(MAX_BODY) })), 413],
      [request("PUT", "/app/log/private?id=3", { "Content-Type": "text/plain" }, '{"msg":"m"}'), 415],
      [chunked, 200],
      [request("GET", "/app/log/%70rivate?id=1"), 404],
      [request("GET", "/app/log/private?id=1&id=2"), 400],
      [request("GET", "/app/tx?transaction_id=1.1"), 200],
    ];
    // One connection each: fastify may close one after refusing its request.
    for (const [bytes, status] of cases) {
      const [answer] = await same([bytes], "fastify's");
      assert.equal(answer?.status, status, answer?.raw);
      if (status === 413) assert.match(answer!.raw, /x-ms-ccf-transaction-id: \d+\.\d+\r\n/);
    }
  });

  test("most requests were taken directly", () => {
    // The two first tests' 21 requests; the third test's 6 are fastify's.
    assert.equal(direct, 21);
  });

  test("a stopping node answers a request that arrives on a busy connection 503, on both paths", async () => {
    held = new Promise((r) => {
      release = () => r(undefined);
    });
    const { certPem, privateKeyPem } = cluster.user;
    const raws: string[] = [];
    for (const server of servers) {
      // One connection: a request held in its handler, then (once the server is closing) another.
      const socket = connect({
        host: "127.0.0.1",
        port: server.port,
        ca,
        cert: certPem,
        key: privateKeyPem,
        servername: "localhost",
      });
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      const closed = new Promise((r) => socket.on("close", r));
      await new Promise((r) => socket.once("secureConnect", r));
      socket.write(request("POST", "/app/shapes/held", json, "{}"));
      // Time for each request to reach the server: an idle machine's 300 ms, stretched by the load.
      await new Promise((r) => setTimeout(r, budget(300)));
      const closing = server.close();
      socket.write(request("GET", "/app/shapes/empty"));
      await new Promise((r) => setTimeout(r, budget(300)));
      release();
      await closing;
      await Promise.race([closed, new Promise((r) => setTimeout(r, budget(5_000)))]);
      socket.destroy();
      raws.push(Buffer.concat(chunks).toString("latin1"));
      held = new Promise((r) => {
        release = () => r(undefined);
      });
    }
    release();
    assert.match(raws[0]!, /HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 503 Service Unavailable[\s\S]*"NodeStopping"/);
    assert.equal(
      normalized(raws[0]!).replace(/\r\nDate: -/g, ""),
      normalized(raws[1]!).replace(/\r\nDate: -/g, ""),
    );
  });
});
