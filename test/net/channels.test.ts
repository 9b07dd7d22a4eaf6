import assert from "node:assert/strict";
import { after, test } from "node:test";
import { NetError, type NodeChannels } from "../../src/net/index.ts";
import {
  ANSWER_MS,
  budget,
  inbox,
  makeNode,
  makeService,
  mesh,
  type NodeIdentity,
  start,
  waitFor,
} from "./helpers.ts";

const service = await makeService();
const ids = await Promise.all([makeNode(service), makeNode(service), makeNode(service)]);
const nodes: NodeChannels[] = await Promise.all(ids.map((id) => start(id)));
const [a, b, c] = nodes as [NodeChannels, NodeChannels, NodeChannels];
const inboxes = nodes.map(inbox);
mesh(nodes);

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

const isNetError = (code: string) => (err: unknown) => err instanceof NetError && err.code === code;

test("three nodes exchange messages both ways, in order per sender", {
  timeout: budget(15_000),
}, async () => {
  const count = 300;
  for (const from of nodes) {
    for (const to of nodes) {
      if (from === to) continue;
      for (let i = 0; i < count; i++) {
        assert.equal(from.send(to.nodeId, { seq: i, from: from.nodeId, pad: "x".repeat(i % 50) }), true);
      }
    }
  }
  await waitFor("every message", () =>
    inboxes.every((box) => [...box.values()].reduce((n, l) => n + l.length, 0) === 2 * count),
  );
  for (const [i, to] of nodes.entries()) {
    const box = inboxes[i] as Map<string, unknown[]>;
    for (const from of nodes) {
      if (from === to) continue;
      const got = box.get(from.nodeId) as { seq: number; from: string }[];
      assert.deepEqual(
        got.map((m) => m.seq),
        Array.from({ length: count }, (_, k) => k),
      );
      // The sender id handed to the handler is the authenticated one.
      assert.ok(got.every((m) => m.from === from.nodeId));
    }
  }
  const stats = a.stats();
  assert.equal(stats[b.nodeId]?.connected, true);
  assert.equal(stats[b.nodeId]?.inbound, true);
  assert.ok((stats[b.nodeId]?.sent ?? 0) >= count);
  assert.ok((stats[b.nodeId]?.received ?? 0) >= count);
  assert.equal(stats[b.nodeId]?.dropped, 0);
});

test("request/response, failures from the handler, and timeouts", { timeout: budget(15_000) }, async () => {
  b.onRequest(async (from, message) => {
    const m = message as { op: string; n?: number };
    if (m.op === "double") return { from, doubled: (m.n ?? 0) * 2 };
    if (m.op === "fail") throw new Error("no such endpoint");
    return new Promise(() => {}); // never answers
  });
  assert.deepEqual(await a.request(b.nodeId, { op: "double", n: 21 }, ANSWER_MS), {
    from: a.nodeId,
    doubled: 42,
  });
  // Many requests at once each get their own answer.
  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, n) => c.request(b.nodeId, { op: "double", n }, ANSWER_MS)),
  );
  assert.deepEqual(
    answers.map((x) => (x as { doubled: number }).doubled),
    Array.from({ length: 50 }, (_, n) => n * 2),
  );
  await assert.rejects(a.request(b.nodeId, { op: "fail" }, ANSWER_MS), (err: unknown) => {
    return isNetError("remote")(err) && /no such endpoint/.test((err as Error).message);
  });
  const started = Date.now();
  await assert.rejects(a.request(b.nodeId, { op: "hang" }, 150), (err: unknown) => {
    return isNetError("timeout")(err) && /did not answer within 150 ms/.test((err as Error).message);
  });
  // Never early. No upper bound on the clock (a loaded machine may be slow): a deadline that did
  // not fire would leave the promise pending and fail the test at its own time-out.
  const waited = Date.now() - started;
  assert.ok(waited >= 140, `timed out after ${waited} ms, before the 150 ms deadline`);
  // The channel still works after a timeout.
  assert.deepEqual(await a.request(b.nodeId, { op: "double", n: 1 }, ANSWER_MS), {
    from: a.nodeId,
    doubled: 2,
  });
});

test("a node without a request handler answers with an error", { timeout: budget(5_000) }, async () => {
  await assert.rejects(a.request(c.nodeId, "hello", ANSWER_MS), (err: unknown) => {
    return isNetError("remote")(err) && /takes no requests/.test((err as Error).message);
  });
});

test("unknown peers and bad arguments fail cleanly, without throwing from send", async () => {
  const stranger = "0".repeat(64);
  assert.equal(a.send(stranger, "hi"), false);
  await assert.rejects(a.request(stranger, "hi", 100), isNetError("unknown-peer"));
  await assert.rejects(a.request(b.nodeId, "hi", 0), isNetError("config"));
  await assert.rejects(a.request(b.nodeId, "hi", 2 ** 31), isNetError("config"));
  assert.throws(() => a.setPeer("not-an-id", "127.0.0.1:1", a.certPem), isNetError("config"));
  assert.throws(() => a.setPeer(a.nodeId, "127.0.0.1:1", a.certPem), isNetError("config"));
  assert.throws(() => a.setPeer(stranger, "nowhere", a.certPem), isNetError("config"));
});

test("a message too large for one frame is dropped and counted; a request is rejected", async () => {
  const small = await start(await makeNode(service), {
    maxFrameBytes: 1_000,
  });
  try {
    small.setPeer(b.nodeId, `127.0.0.1:${b.port}`, b.certPem);
    assert.equal(small.send(b.nodeId, "x".repeat(2_000)), false);
    assert.equal(small.stats()[b.nodeId]?.dropped, 1);
    await assert.rejects(small.request(b.nodeId, "x".repeat(2_000), 1_000), isNetError("encode"));
  } finally {
    await small.close();
  }
});

test("a message handler that throws does not break the channel", { timeout: budget(5_000) }, async () => {
  const seen: unknown[] = [];
  c.onMessage((_from, message) => {
    seen.push(message);
    if (message === "boom") throw new Error("handler bug");
  });
  a.send(c.nodeId, "boom");
  a.send(c.nodeId, "after");
  await waitFor("message after the throw", () => seen.includes("after"));
  assert.deepEqual(seen, ["boom", "after"]);
});

test("options are checked at start", async () => {
  const [x, y] = ids as [NodeIdentity, NodeIdentity, NodeIdentity];
  await assert.rejects(start({ ...x, nodeId: y.nodeId }), /does not match certPem/);
  await assert.rejects(start({ ...x, privateKeyPem: y.privateKeyPem }), (err: unknown) => {
    return isNetError("config")(err) && /cannot set up TLS/.test((err as Error).message);
  });
  const other = await makeService("Other Service");
  await assert.rejects(start({ ...x, serviceCertPem: other.certPem }), /not issued by the service/);
  await assert.rejects(start(x, { maxQueuedBytesPerPeer: 0 }), isNetError("config"));
  await assert.rejects(start(x, { backoff: { initialMs: 10, maxMs: 1 } }), isNetError("config"));
  await assert.rejects(start(x, {}, a.port), isNetError("listen"));
});
