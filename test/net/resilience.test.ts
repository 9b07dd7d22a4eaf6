import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { createServer } from "node:tls";
import { encodeEnvelope, PROTOCOL_VERSION } from "../../src/net/envelope.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import type { NodeChannels } from "../../src/net/index.ts";
import {
  ANSWER_MS,
  addr,
  budget,
  freePort,
  inbox,
  makeNode,
  makeService,
  mesh,
  type NodeIdentity,
  start,
  waitFor,
} from "./helpers.ts";

const service = await makeService();
const open: NodeChannels[] = [];
after(async () => {
  await Promise.all(open.map((n) => n.close()));
});

async function node(id?: NodeIdentity, extra = {}, port = 0): Promise<NodeChannels> {
  const channels = await start(id ?? (await makeNode(service)), extra, port);
  open.push(channels);
  return channels;
}

test("a down peer: sends queue up to the bound, then drop; others unaffected; the queue drains when it starts", {
  timeout: budget(20_000),
}, async () => {
  const bound = 64 * 1024;
  const a = await node(undefined, { maxQueuedBytesPerPeer: bound });
  const c = await node();
  const boxC = inbox(c);
  mesh([a, c]);
  const idB = await makeNode(service);
  const portB = await freePort();
  a.setPeer(idB.nodeId, addr(portB), idB.certPem);

  const accepted: number[] = [];
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    if (a.send(idB.nodeId, { i, pad: "p".repeat(1_000) })) accepted.push(i);
    else refused++;
    assert.equal(a.send(c.nodeId, { i }), true, "sends to a healthy peer are never refused");
  }
  const stats = a.stats()[idB.nodeId];
  assert.ok(accepted.length > 10 && refused > 10, `accepted ${accepted.length}, refused ${refused}`);
  assert.equal(stats?.dropped, refused);
  assert.ok((stats?.queuedBytes ?? 0) <= bound && (stats?.queuedBytes ?? 0) > bound - 1_100);
  assert.equal(stats?.connected, false);
  await waitFor("c to get everything", () => boxC.get(a.nodeId)?.length === 200);

  // b comes up on the address a has been dialing, and receives what was queued, in order.
  const b = await node(idB, {}, portB);
  const boxB = inbox(b);
  b.setPeer(a.nodeId, addr(a), a.certPem);
  await waitFor("the queue to drain into b", () => boxB.get(a.nodeId)?.length === accepted.length, 10_000);
  assert.deepEqual(
    boxB.get(a.nodeId)?.map((m) => (m as { i: number }).i),
    accepted,
  );
  assert.equal(a.stats()[b.nodeId]?.queuedBytes, 0);
  assert.equal(a.stats()[b.nodeId]?.connected, true);
});

test("a peer that stops reading: backpressure, a bounded queue, and no effect on others", {
  timeout: budget(20_000),
}, async () => {
  const bound = 1024 * 1024;
  const a = await node(undefined, { maxQueuedBytesPerPeer: bound });
  const c = await node();
  const boxC = inbox(c);
  mesh([a, c]);
  // A peer with a valid identity that accepts the connection and then never reads a byte
  // (like a process stopped with SIGSTOP: the kernel still holds the socket open).
  const idS = await makeNode(service);
  let accepted = 0;
  const stalled = createServer(
    { key: idS.privateKeyPem, cert: idS.certPem, ca: [service.certPem], requestCert: true },
    (socket) => {
      accepted++;
      socket.write(encodeFrame(encodeEnvelope({ kind: "hello", version: PROTOCOL_VERSION })));
      socket.pause();
    },
  );
  await new Promise<void>((resolve) => stalled.listen(0, "127.0.0.1", resolve));
  try {
    const port = (stalled.address() as { port: number }).port;
    a.setPeer(idS.nodeId, addr(port), idS.certPem);
    a.setPeer(c.nodeId, addr(c), c.certPem);
    await waitFor("a to connect to the stalled peer", () => a.stats()[idS.nodeId]?.connected === true);
    const chunk = randomBytes(64 * 1024);
    let refused = 0;
    let toC = 0;
    for (let i = 0; i < 400 && refused === 0; i++) {
      if (!a.send(idS.nodeId, chunk)) refused++;
      assert.equal(a.send(c.nodeId, i), true);
      toC++;
      // Let the event loop run so the socket can fill up for real.
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const stats = a.stats()[idS.nodeId];
    assert.equal(refused, 1, "the stalled peer's queue filled and refused a message");
    assert.ok((stats?.queuedBytes ?? 0) <= bound, `queued ${stats?.queuedBytes} > ${bound}`);
    assert.ok((stats?.sent ?? 0) > 0, "some frames did go into the socket");
    assert.equal(accepted, 1);
    await waitFor("c to get all its messages", () => boxC.get(a.nodeId)?.length === toC);
    assert.deepEqual(
      boxC.get(a.nodeId),
      Array.from({ length: toC }, (_, i) => i),
    );
    a.removePeer(idS.nodeId);
  } finally {
    stalled.close();
  }
});

test("a restarted peer: the connection comes back by itself", { timeout: budget(20_000) }, async () => {
  const idB = await makeNode(service);
  const a = await node();
  const boxA = inbox(a);
  let b = await node(idB);
  let boxB = inbox(b);
  mesh([a, b]);
  a.send(b.nodeId, "before");
  await waitFor("first message", () => Boolean(boxB.get(a.nodeId)?.includes("before")));
  const port = b.port;
  await b.close();
  await waitFor("a to notice", () => a.stats()[idB.nodeId]?.connected === false);
  b = await node(idB, {}, port);
  boxB = inbox(b);
  b.setPeer(a.nodeId, addr(a), a.certPem); // nothing is configured on a: it redials on its own
  await waitFor("a to reconnect", () => a.stats()[idB.nodeId]?.connected === true, 10_000);
  a.send(b.nodeId, "after");
  b.send(a.nodeId, "hello again");
  await waitFor("traffic both ways", () =>
    Boolean(boxB.get(a.nodeId)?.includes("after") && boxA.get(b.nodeId)?.includes("hello again")),
  );
  // A request that was in flight when the peer went down fails fast, not at its deadline.
  let arrived = false;
  b.onRequest(() => {
    arrived = true;
    return new Promise(() => {});
  });
  const pending = a.request(b.nodeId, "hang", 10_000);
  await waitFor("the request to reach b", () => arrived);
  await b.close();
  // "disconnected", not "timeout": it failed on the disconnection, not at its 10 s deadline (no
  // wall-clock bound, which a loaded machine could break).
  await assert.rejects(pending, (err: unknown) => (err as { code?: string }).code === "disconnected");
});

test("large messages (8 MiB) arrive intact, both as messages and as request/response", {
  timeout: budget(30_000),
}, async () => {
  const a = await node();
  const b = await node();
  const boxB = inbox(b);
  mesh([a, b]);
  const big = new Uint8Array(randomBytes(8 * 1024 * 1024));
  const entries = Array.from({ length: 4 }, (_, i) => ({
    seqno: i,
    data: new Uint8Array(randomBytes(100_000)),
  }));
  assert.equal(a.send(b.nodeId, { big, entries }), true);
  assert.equal(a.send(b.nodeId, "small after big"), true);
  await waitFor("both messages", () => boxB.get(a.nodeId)?.length === 2, 20_000);
  const [first, second] = boxB.get(a.nodeId) as [{ big: Uint8Array; entries: typeof entries }, string];
  assert.ok(Buffer.from(first.big).equals(Buffer.from(big)));
  assert.deepEqual(first.entries, entries);
  assert.equal(second, "small after big");
  b.onRequest(async (_from, message) => (message as Uint8Array).slice().reverse());
  const answer = (await a.request(b.nodeId, big, ANSWER_MS)) as Uint8Array;
  assert.ok(Buffer.from(answer).equals(Buffer.from(big.slice().reverse())));
});

test("removePeer stops dialing, drops the queue and fails its pending requests", {
  timeout: budget(10_000),
}, async () => {
  const a = await node();
  const idB = await makeNode(service);
  a.setPeer(idB.nodeId, addr(await freePort()), idB.certPem);
  assert.equal(a.send(idB.nodeId, "queued"), true);
  const pending = a.request(idB.nodeId, "q", 5_000);
  a.removePeer(idB.nodeId);
  await assert.rejects(pending, (err: unknown) => (err as { code?: string }).code === "closed");
  assert.equal(a.stats()[idB.nodeId], undefined);
  assert.equal(a.send(idB.nodeId, "more"), false);
  // close() fails what is still pending, and is safe to repeat.
  const c = await node();
  a.setPeer(c.nodeId, addr(c), c.certPem);
  c.onRequest(() => new Promise(() => {}));
  const hanging = a.request(c.nodeId, "q", 5_000);
  await a.close();
  await a.close();
  await assert.rejects(hanging, (err: unknown) => (err as { code?: string }).code === "closed");
  assert.equal(a.send(c.nodeId, "after close"), false);
});

test("setPeer with a new address redials there at once, keeping the queue", {
  timeout: budget(10_000),
}, async () => {
  // Slow backoff, so only the address change (not a scheduled retry) can explain a quick delivery.
  const a = await node(undefined, { backoff: { initialMs: 20_000, maxMs: 60_000 } });
  const b = await node();
  const boxB = inbox(b);
  b.setPeer(a.nodeId, addr(a), a.certPem);
  a.setPeer(b.nodeId, addr(await freePort()), b.certPem);
  // The first dial is refused within a few ms; the next one is then 10-20 s away.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(a.stats()[b.nodeId]?.connected, false);
  assert.equal(a.send(b.nodeId, "queued while misaddressed"), true);
  a.setPeer(b.nodeId, addr(b), b.certPem);
  await waitFor("delivery at the new address", () => boxB.get(a.nodeId)?.length === 1, 3_000);
  assert.deepEqual(boxB.get(a.nodeId), ["queued while misaddressed"]);
});

test("a request given up on while queued is withdrawn: the peer never runs it; once written it is 'abandoned'", {
  timeout: budget(20_000),
}, async () => {
  const idB = await makeNode(service);
  const a = await node();
  const port = await freePort();
  // b is down: a's requests to it wait in the queue.
  a.setPeer(idB.nodeId, `127.0.0.1:${port}`, idB.certPem);
  const abort = new AbortController();
  let written = false;
  const queued = a.request(idB.nodeId, "never run", 10_000, {
    signal: abort.signal,
    onWritten: () => {
      written = true;
    },
  });
  const timedOut = a.request(idB.nodeId, "never run either", 200);
  abort.abort();
  await assert.rejects(queued, (err: unknown) => (err as { code?: string }).code === "cancelled");
  await assert.rejects(timedOut, (err: unknown) => (err as { code?: string }).code === "timeout");
  assert.equal(written, false);
  assert.equal(a.stats()[idB.nodeId]?.queuedBytes, 0, "both frames left the queue");

  const b = await node(idB, {}, port);
  const seen: unknown[] = [];
  b.onRequest(async (_from, message) => {
    seen.push(message);
    return message === "hang" ? new Promise(() => {}) : "ok";
  });
  b.setPeer(a.nodeId, addr(a), a.certPem);
  await waitFor("a to connect to b", () => a.stats()[idB.nodeId]?.connected === true, 10_000);
  assert.equal(await a.request(idB.nodeId, "ping", ANSWER_MS), "ok");
  assert.deepEqual(seen, ["ping"], "the withdrawn requests never reached b");

  const later = new AbortController();
  const hanging = a.request(idB.nodeId, "hang", 10_000, { signal: later.signal });
  await waitFor("b to receive it", () => seen.includes("hang"));
  later.abort();
  await assert.rejects(hanging, (err: unknown) => (err as { code?: string }).code === "abandoned");
});
