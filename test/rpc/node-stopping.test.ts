/**
 * 503 NodeStopping (docs/api.md): a request that reaches a node after it began to stop. New
 * connections are refused then and idle ones are closed at once, so the only way in is a
 * connection that is busy while the stop begins: here one whose write waits for a commit that
 * will not come. A second request pipelined on that same connection after the stop began must
 * get 503 NodeStopping (and `connection: close`), after the first gets its 503 CommitUnavailable.
 * A raw TLS socket sends both, since HTTP clients do not pipeline.
 */
import assert from "node:assert/strict";
import { connect as tcpConnect } from "node:net";
import { test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { budget } from "../e2e/waits.ts";
import { freePort } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits what the node sent on one connection into HTTP/1.1 responses (content-length bodies). */
function parseResponses(raw: Buffer): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf("\r\n\r\n", at);
    assert.ok(end >= 0, `an incomplete response head: ${raw.subarray(at).toString()}`);
    const [statusLine, ...lines] = raw.subarray(at, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers["content-length"]);
    assert.ok(Number.isInteger(length), `a response without content-length: ${statusLine}`);
    const body = raw.subarray(end + 4, end + 4 + length).toString("utf8");
    out.push({ status: Number(statusLine!.split(" ")[1]), headers, body });
    at = end + 4 + length;
  }
  return out;
}

/** Whether a new TCP connection to the port is refused (the server stopped listening). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

test("a request pipelined on a busy connection after the node began to stop gets 503 NodeStopping", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const timeouts = { commitWaitTimeoutMs: budget(30_000) };
  try {
    const n0 = await cluster.startService({ ...timeouts, openAtNodes: 2 });
    const n1 = await cluster.join("n1", n0, {
      ...timeouts,
      rpc: { address: `127.0.0.1:${await freePort()}` },
      nodeAddress: `127.0.0.1:${await freePort()}`,
    });
    await cluster.untilOpen();
    assert.ok(n0.node.isPrimary);
    // Without its backup the primary cannot commit: a write that waits for its commit keeps the
    // connection busy for as long as the test needs.
    await n1.stop();

    const socket = tlsConnect({
      host: "127.0.0.1",
      port: n0.port,
      ca: n0.node.identity.serviceCertPem,
      cert: cluster.user.certPem,
      key: cluster.user.privateKeyPem,
      ALPNProtocols: ["http/1.1"],
    });
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    const ended = new Promise<void>((resolve, reject) => {
      socket.once("close", () => resolve());
      socket.once("error", reject);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    const versionBefore = n0.node.state.store.version;
    const body = JSON.stringify({ msg: "waits for a commit that will not come" });
    socket.write(
      "PUT /app/log/private?id=7 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n" +
        `x-coco-wait: commit\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    // The write executed and now waits for its commit: the store holds it, no answer came.
    await cluster.until(
      "the write to execute on the primary",
      () => n0.node.state.store.version > versionBefore,
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received.length, 0, "the write is still waiting for its commit");

    const stopping = n0.stop();
    // The stop has begun once the node no longer listens: from then on, only a connection that
    // was busy can still carry a request.
    await cluster.until("the node to stop listening", () => refused(n0.port));
    socket.write("GET /node/state HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    await ended;
    await stopping;

    const [first, second, ...more] = parseResponses(Buffer.concat(received));
    assert.deepEqual(more, [], "two requests, two answers");
    assert.equal(first?.status, 503, first?.body);
    assert.equal(JSON.parse(first!.body).error.code, "CommitUnavailable");
    assert.equal(second?.status, 503, second?.body);
    assert.deepEqual(JSON.parse(second!.body), {
      error: { code: "NodeStopping", message: "this node is stopping; retry on another node" },
    });
    assert.equal(second?.headers.connection, "close");
    assert.match(second?.headers["content-type"] ?? "", /^application\/json/);
  } finally {
    await cluster.stop();
  }
});
