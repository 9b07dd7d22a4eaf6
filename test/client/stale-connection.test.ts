import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { createServer, type TLSSocket } from "node:tls";
import { HttpsTransport } from "../../src/client/https.ts";
import { budget } from "../e2e/waits.ts";
import { startTestNetwork } from "../helpers/network.ts";

/**
 * A node closes a kept-alive connection that has been idle for its `rpc.idleTimeoutMs`; on a
 * loaded machine the client can send its next request on that connection just as it closes, and
 * the request is reset unread. The client sends such a request again on a new connection. Here a
 * TLS server with a real node's certificate answers the first request of every connection and
 * closes the connection, unanswered, under the second: the race, made certain.
 */
const sockets = new Set<TLSSocket>();

async function closingServer(key: string, cert: string) {
  const seen: string[] = [];
  const server = createServer({ key, cert }, (socket: TLSSocket) => {
    sockets.add(socket);
    let requests = 0;
    socket.on("data", (data: Buffer) => {
      requests++;
      seen.push(`${requests}:${data.toString("latin1").split(" ", 2).join(" ")}`);
      if (requests > 1) {
        socket.destroy();
        return;
      }
      const body = `answer ${seen.length}`;
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30\r\n\r\n${body}`,
      );
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, seen, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test("a request reset unread on a kept-alive connection is sent again once, on a new connection", {
  timeout: budget(30_000),
}, async (t) => {
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  const net = await startTestNetwork();
  t.after(() => net.cleanup());
  const { nodePrivateKeyPem, nodeCertPem } = net.running.node.identity;
  const { server, seen, url } = await closingServer(nodePrivateKeyPem, nodeCertPem);
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const http = new HttpsTransport({ ca: net.serviceCertPem });
  t.after(() => http.close());

  const first = await http.send(`${url}/a`);
  assert.equal(first.body.toString(), "answer 1");
  // Reuses the kept-alive connection, which the server closes under it: a signed governance
  // request (refused as a replay if it had been applied) is sent again, and answered.
  const cose = { "Content-Type": "application/cose" };
  const second = await http.send(`${url}/b`, { method: "POST", headers: cose, body: "{}" });
  assert.equal(second.body.toString(), "answer 3");
  assert.deepEqual(seen, ["1:GET /a", "2:POST /b", "1:POST /b"]);
  // Any other POST might run twice if the node read it before the reset: the caller decides.
  await assert.rejects(
    http.send(`${url}/d`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }),
    (e: NodeJS.ErrnoException) => e.code === "ECONNRESET",
  );
  assert.deepEqual(seen.slice(3), ["2:POST /d"]);
  // An idempotent method is sent again (the reset connection is gone: a GET opens the next one).
  await http.send(`${url}/f`);
  const idempotent = await http.send(`${url}/e`, { method: "PUT", body: "{}" });
  assert.equal(idempotent.body.toString(), "answer 7");
  assert.deepEqual(seen.slice(4), ["1:GET /f", "2:PUT /e", "1:PUT /e"]);

  // A connection closed under its first request is not retried: the caller gets the error.
  const fresh = new HttpsTransport({ ca: net.serviceCertPem });
  t.after(() => fresh.close());
  const dropAll = createServer({ key: nodePrivateKeyPem, cert: nodeCertPem }, (socket) => {
    sockets.add(socket);
    socket.on("data", () => socket.destroy());
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => dropAll.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => dropAll.close(resolve)));
  const dropUrl = `https://127.0.0.1:${(dropAll.address() as AddressInfo).port}/c`;
  await assert.rejects(fresh.send(dropUrl), (e: NodeJS.ErrnoException) => e.code === "ECONNRESET");
});
