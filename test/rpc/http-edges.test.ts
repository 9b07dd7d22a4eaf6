import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect } from "node:tls";
import { promisify } from "node:util";
import type { RunningNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";

/** HTTP's edges, against one real node over TLS: every error in one shape, and nothing half-read. */

interface RawAnswer {
  alpn: string | false;
  status: number;
  headers: string;
  body: string;
}

/** Sends `bytes` on a fresh TLS connection and reads until the node closes it. */
function raw(
  node: RunningNode,
  ca: string,
  bytes: string,
  alpn: string[] = ["http/1.1"],
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port: node.port,
      ca,
      servername: "localhost",
      ALPNProtocols: alpn,
    });
    const chunks: Buffer[] = [];
    socket.on("secureConnect", () => socket.write(bytes));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const [head = "", body = ""] = text.split("\r\n\r\n");
      resolve({
        alpn: socket.alpnProtocol ?? false,
        status: Number(head.split(" ")[1]),
        headers: head,
        body,
      });
    });
    setTimeout(() => socket.destroy(new Error("no answer within 10 s")), 10_000).unref();
  });
}

function assertCocoError(body: string, status: number, code: string): { code: string; message: string } {
  const parsed = JSON.parse(body) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(parsed), ["error"], body);
  assert.equal(parsed.error.code, code, `${status}: ${body}`);
  assert.equal(typeof parsed.error.message, "string");
  return parsed.error;
}

describe("HTTP edge cases", () => {
  let cluster: Cluster;
  let node: RunningNode;
  let ca: string;

  before(async () => {
    cluster = await Cluster.create();
    node = await cluster.startService({ rpc: { maxBodyBytes: 4096 } });
    await cluster.untilOpen();
    ca = node.node.identity.serviceCertPem;
  });
  after(async () => {
    await cluster.stop();
  });

  test("a JSON endpoint refuses other content types with 415 and writes nothing", async () => {
    for (const type of [
      "application/x-www-form-urlencoded",
      "text/plain",
      "multipart/form-data; boundary=x",
    ]) {
      const res = await cluster.call(node, "PUT", "/app/log/private?id=1", {
        body: { msg: "m" },
        headers: { "content-type": type },
      });
      assert.equal(res.status, 415, `${type}: ${res.text}`);
      assert.match(assertCocoError(res.text, 415, "UnsupportedContentType").message, /application\/json/);
    }
    assert.equal((await cluster.call(node, "GET", "/app/log/private?id=1")).status, 404, "nothing written");
    const ok = await cluster.call(node, "PUT", "/app/log/private?id=1", {
      body: { msg: "m" },
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    assert.equal(ok.status, 200, ok.text);
    const join = await cluster.call(node, "POST", "/node/join", {
      body: {},
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(join.status, 415);
    assertCocoError(join.text, 415, "UnsupportedContentType");
  });

  test("a repeated query parameter is refused with 400 naming it, on every endpoint", async () => {
    for (const path of [
      "/app/log/private?id=1&id=2",
      "/app/tx?transaction_id=2.1&transaction_id=2.2",
      "/node/state?x=1&x=2",
    ]) {
      const res = await cluster.call(node, "GET", path);
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      const name = path.includes("transaction_id") ? "transaction_id" : path.includes("?id") ? "id" : "x";
      assert.match(
        assertCocoError(res.text, 400, "InvalidQueryParameterValue").message,
        new RegExp(`"${name}"`),
      );
    }
  });

  test("an endpoint that pages refuses an unknown query parameter, so a paging loop cannot spin", async () => {
    const res = await cluster.call(node, "GET", "/app/log/private/range?limit=10&aftr=5");
    assert.equal(res.status, 400, res.text);
    assert.match(assertCocoError(res.text, 400, "UnknownQueryParameter").message, /"aftr"/);
    const ok = await cluster.call(node, "GET", "/app/log/private/range?limit=10&from=0");
    assert.equal(ok.status, 200, ok.text);
  });

  test("the parser's refusals (400, 413, 431) have the same error shape as every other error", async () => {
    const garbage = await raw(node, ca, "NOT A REQUEST\r\n\r\n");
    assert.equal(garbage.status, 400, garbage.headers);
    assertCocoError(garbage.body, 400, "InvalidInput");

    const huge = await raw(
      node,
      ca,
      `GET /node/state HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    assert.equal(huge.status, 431, huge.headers);
    assertCocoError(huge.body, 431, "RequestHeaderFieldsTooLarge");

    const big = await cluster.call(node, "PUT", "/app/log/private?id=2", { body: { msg: "x".repeat(5000) } });
    assert.equal(big.status, 413);
    assertCocoError(big.text, 413, "RequestBodyTooLarge");

    const badUrl = await cluster.call(node, "GET", "/gov/members/proposals/%E0%A4%A?api-version=2024-07-01");
    assert.ok(badUrl.status >= 400 && badUrl.status < 500, badUrl.text);
    assert.deepEqual(Object.keys(JSON.parse(badUrl.text)), ["error"]);

    const missing = await cluster.call(node, "GET", "/no/such/path");
    assert.equal(missing.status, 404);
    assertCocoError(missing.text, 404, "ResourceNotFound");
  });

  test("HTTP/1.0 and HTTP/1.1 both negotiate over TLS", async () => {
    const old = await raw(node, ca, "GET /node/commit HTTP/1.0\r\n\r\n", ["http/1.0"]);
    assert.equal(old.alpn, "http/1.0");
    assert.equal(old.status, 200, old.headers);
    assert.match(JSON.parse(old.body).transaction_id, /^\d+\.\d+$/);
    const current = await raw(node, ca, "GET /node/commit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert.equal(current.alpn, "http/1.1");
    assert.equal(current.status, 200, current.headers);

    if (!existsSync("/usr/bin/curl")) return;
    const caFile = join(cluster.dir, "edge_service_cert.pem");
    writeFileSync(caFile, ca);
    for (const version of ["--http1.0", "--http1.1"]) {
      const { stdout } = await promisify(execFile)("curl", [
        "-sS",
        version,
        "--cacert",
        caFile,
        "-w",
        "\n%{http_code}",
        `https://localhost:${node.port}/node/commit`,
      ]);
      const [body, status] = stdout.trim().split("\n");
      // The node answers with its own version line (1.1) after the handshake agreed on 1.0.
      assert.equal(status, "200", `${version}: ${stdout}`);
      assert.match(JSON.parse(body!).transaction_id, /^\d+\.\d+$/);
    }
  });
});
