import assert from "node:assert/strict";
import { once } from "node:events";
import { connect as connectTcp, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { connect as connectTls } from "node:tls";
import type { RunningNode } from "../../src/node/index.ts";
import { clientErrorHandler } from "../../src/rpc/http-checks.ts";
import { Cluster } from "../helpers/cluster.ts";

/**
 * What the node does with errors on a client connection that are not the client's malformed
 * request: none may be answered "400 malformed HTTP request", and none may let a request run.
 */

interface Outcome {
  /** Everything the node sent after the handshake, as text. */
  answer: string;
  /** The client's TLS handshake completed. */
  secure: boolean;
}

/**
 * Opens a TCP connection and holds back the TLS ClientHello until the node has timed out the
 * handshake (as a node starved of CPU does when the handshake is slow), then completes it as
 * user0 and sends `request`. Reads until the connection closes.
 */
async function lateHandshake(cluster: Cluster, node: RunningNode, request: string): Promise<Outcome> {
  const raw = node.server.server;
  const timedOut = new Promise<void>((resolve) => {
    const seen = (err: NodeJS.ErrnoException) => {
      if (err.code !== "ERR_TLS_HANDSHAKE_TIMEOUT") return;
      raw.off("tlsClientError", seen);
      resolve();
    };
    raw.on("tlsClientError", seen);
  });
  const tcp = connectTcp({ host: "127.0.0.1", port: node.port });
  await once(tcp, "connect");
  await timedOut;
  // Whatever the node does next (close, answer) is queued by now; give it a turn to act.
  await new Promise((r) => setTimeout(r, 50));
  return new Promise((resolve) => {
    const tls = connectTls({
      socket: tcp,
      ca: node.node.identity.serviceCertPem,
      cert: cluster.user.certPem,
      key: cluster.user.privateKeyPem,
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
    });
    let secure = false;
    const chunks: Buffer[] = [];
    tls.on("secureConnect", () => {
      secure = true;
      tls.write(request);
    });
    tls.on("data", (c: Buffer) => chunks.push(c));
    tls.on("error", () => {});
    tls.on("close", () => resolve({ answer: Buffer.concat(chunks).toString("utf8"), secure }));
    setTimeout(() => tls.destroy(), 15_000).unref();
  });
}

describe("errors on a client connection that are not a malformed request", () => {
  let cluster: Cluster;
  let node: RunningNode;

  before(async () => {
    cluster = await Cluster.create();
    // The handshake timeout is the idle timeout when that is shorter than 10 s.
    node = await cluster.startService({ rpc: { idleTimeoutMs: 3_000 } });
    await cluster.untilOpen();
  });
  after(async () => {
    await cluster.stop();
  });

  test("a TLS handshake the node timed out is closed: the request sent after it is neither answered 400 nor run", async () => {
    const id = 7001;
    const body = JSON.stringify({ msg: "late" });
    const outcome = await lateHandshake(
      cluster,
      node,
      `PUT /app/log/private?id=${id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    assert.doesNotMatch(outcome.answer, /malformed HTTP request|InvalidInput/, outcome.answer);
    assert.equal(outcome.answer, "", "a connection whose handshake timed out gets no HTTP answer");

    // The node still serves, and the write sent on the timed-out connection never ran.
    const read = await cluster.call(node, "GET", `/app/log/private?id=${id}`);
    assert.equal(read.status, 404, read.text);
  });

  test("a parser error is still answered 400, naming the parser's error code", async () => {
    const tls = connectTls({
      host: "127.0.0.1",
      port: node.port,
      ca: node.node.identity.serviceCertPem,
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
    });
    await once(tls, "secureConnect");
    const chunks: Buffer[] = [];
    tls.on("data", (c: Buffer) => chunks.push(c));
    tls.write("GET /node/commit HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
    await once(tls, "close");
    const text = Buffer.concat(chunks).toString("utf8");
    assert.match(text, /^HTTP\/1\.1 400 /, text);
    const error = JSON.parse(text.split("\r\n\r\n")[1]!).error as { code: string; message: string };
    assert.equal(error.code, "InvalidInput");
    assert.match(error.message, /^malformed HTTP request \(HPE_INVALID_HEADER_TOKEN\): /);
  });
});

/** A stand-in for the connection's socket: records what the handler did to it. */
function fakeSocket() {
  const did = { ended: "", destroyed: false };
  const socket = {
    destroyed: false,
    writable: true,
    end(text: string) {
      did.ended = text;
    },
    destroy() {
      did.destroyed = true;
      socket.destroyed = true;
    },
  };
  return { socket: socket as unknown as Socket, did };
}

function errorWith(code: string, reason?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(reason ?? code), { code }, reason === undefined ? {} : { reason });
}

describe("clientErrorHandler", () => {
  test("answers parser errors and slow requests; closes the connection unanswered on every other error", () => {
    const lines: unknown[] = [];
    const handle = clientErrorHandler({ warn: (obj: unknown) => lines.push(obj) } as never, () => 0);
    const answered = (err: NodeJS.ErrnoException) => {
      const { socket, did } = fakeSocket();
      handle(err, socket);
      return did;
    };
    assert.match(
      answered(errorWith("HPE_INVALID_METHOD", "Invalid method encountered")).ended,
      /^HTTP\/1\.1 400 .*"malformed HTTP request \(HPE_INVALID_METHOD\): Invalid method encountered"/s,
    );
    assert.match(answered(errorWith("HPE_HEADER_OVERFLOW", "Header overflow")).ended, /^HTTP\/1\.1 431 /);
    assert.match(answered(errorWith("ERR_HTTP_REQUEST_TIMEOUT")).ended, /^HTTP\/1\.1 408 /);
    for (const code of [
      "ERR_TLS_HANDSHAKE_TIMEOUT",
      "ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
      "ECONNRESET",
      "EPIPE",
      "HPE_INTERNAL",
      "SOMETHING_NEW",
    ]) {
      const did = answered(errorWith(code));
      assert.equal(did.ended, "", `${code} gets no answer`);
      assert.ok(did.destroyed, `${code} closes the connection`);
    }
    assert.equal(answered(new Error("no code")).ended, "");

    // A parser error behind a request whose response is still under way: no answer that the
    // client could read as that request's.
    const { socket, did } = fakeSocket();
    Object.assign(socket, { _httpMessage: {} });
    handle(errorWith("HPE_INVALID_METHOD", "Invalid method encountered"), socket);
    assert.equal(did.ended, "");
    assert.ok(did.destroyed);
  });

  test("logs errors other than a peer going away, one line per 10 s at most, with counts by code", () => {
    const lines: Array<{ code: string; closedByCode: Record<string, number> }> = [];
    let now = 0;
    const handle = clientErrorHandler({ warn: (obj: never) => lines.push(obj) } as never, () => now);
    const hit = (code: string) => handle(errorWith(code), fakeSocket().socket);
    hit("ECONNRESET");
    assert.equal(lines.length, 0, "a reset is not logged");
    hit("ERR_TLS_HANDSHAKE_TIMEOUT");
    hit("ERR_TLS_HANDSHAKE_TIMEOUT");
    hit("ERR_SSL_WRONG_VERSION_NUMBER");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.code, "ERR_TLS_HANDSHAKE_TIMEOUT");
    now += 10_000;
    hit("ERR_TLS_HANDSHAKE_TIMEOUT");
    assert.equal(lines.length, 2);
    assert.deepEqual(lines[1]!.closedByCode, {
      ERR_TLS_HANDSHAKE_TIMEOUT: 2,
      ERR_SSL_WRONG_VERSION_NUMBER: 1,
    });
  });
});
