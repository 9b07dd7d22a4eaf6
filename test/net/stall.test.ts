/**
 * The stall check (src/net/peer.ts) must tell a peer that is slowly taking a large frame from one
 * that takes nothing (a partition, a stopped process). Both peers here are TLS listeners of the
 * test's own that speak the hello and never answer, so the only thing a's channels can hear from
 * them is their TCP taking bytes; the threshold is shortened with the `stallMs` option.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { decodeEnvelope, encodeEnvelope, PROTOCOL_VERSION } from "../../src/net/envelope.ts";
import { encodeFrame, FrameDecoder } from "../../src/net/frame.ts";
import type { NodeChannels } from "../../src/net/index.ts";
import { addr, budget, makeNode, makeService, sleep, start, waitFor } from "./helpers.ts";

const service = await makeService();
const open: NodeChannels[] = [];
const servers: Server[] = [];
after(async () => {
  await Promise.all(open.map((n) => n.close()));
  for (const s of servers) s.close();
});

const STALL_MS = 1_500;

/**
 * A peer that accepts a's connection, says hello and then reads as `read` lets it; it never sends
 * anything else. Records every connection made to it and every frame it decoded.
 */
async function silentPeer(read: (socket: TLSSocket) => void) {
  const id = await makeNode(service);
  const connections: number[] = [];
  const frames: Uint8Array[] = [];
  const server = createServer(
    { key: id.privateKeyPem, cert: id.certPem, ca: [service.certPem], requestCert: true },
    (socket) => {
      connections.push(Date.now());
      const decoder = new FrameDecoder(1 << 30);
      socket.on("error", () => {});
      socket.on("data", (chunk: Buffer) => frames.push(...decoder.push(chunk)));
      socket.write(encodeFrame(encodeEnvelope({ kind: "hello", version: PROTOCOL_VERSION })));
      read(socket);
    },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { id, port: (server.address() as { port: number }).port, connections, frames };
}

async function sender(stallMs = STALL_MS): Promise<NodeChannels> {
  const a = await start(await makeNode(service), { stallMs });
  open.push(a);
  return a;
}

test("stallMs is validated like the other options", async () => {
  const id = await makeNode(service);
  for (const stallMs of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(start(id, { stallMs }), /stallMs must be an integer from 1/);
  }
});

test("a peer that takes a large frame slowly but steadily, answering nothing, is not cut off", {
  // Above its wait for the transfer (80 s, stretched by the load like the limit itself).
  timeout: budget(90_000),
}, async () => {
  // Reads about 4 MiB a second: up to 512 KiB, then nothing until the next 125 ms tick. The
  // threshold is longer here: once the whole frame has left a's process, the kernels' buffers
  // still hold a few MiB that the peer must take within it (docs/net.md, "Stuck links").
  const stallMs = 3_000;
  const budget = 512 * 1024;
  const ticks: NodeJS.Timeout[] = [];
  const peer = await silentPeer((socket) => {
    let taken = 0;
    socket.on("data", (chunk: Buffer) => {
      taken += chunk.length;
      if (taken >= budget) socket.pause();
    });
    const tick = setInterval(() => {
      taken = 0;
      socket.resume();
    }, 125);
    ticks.push(tick);
    socket.on("close", () => clearInterval(tick));
  });
  try {
    const a = await sender(stallMs);
    a.setPeer(peer.id.nodeId, addr(peer.port), peer.id.certPem);
    await waitFor("a to connect", () => a.stats()[peer.id.nodeId]?.connected === true, 10_000);
    const big = new Uint8Array(randomBytes(32 * 1024 * 1024));
    const began = Date.now();
    assert.equal(a.send(peer.id.nodeId, big), true);
    // Heartbeats follow, as from a Raft primary: they wait behind the big frame, then go out and
    // (the peer answering nothing) start the stall clock as soon as the frame has left a.
    const beats = setInterval(() => a.send(peer.id.nodeId, "heartbeat"), 100);
    try {
      await waitFor(
        "the frame to arrive, or a to redial",
        () => peer.frames.length > 0 || peer.connections.length > 1,
        80_000,
      );
    } finally {
      clearInterval(beats);
    }
    const tookMs = Date.now() - began;
    assert.equal(
      peer.connections.length,
      1,
      `a redialled the peer ${peer.connections.length - 1} time(s) mid-transfer`,
    );
    // Otherwise the test proves nothing: the transfer must outlast the threshold several times.
    assert.ok(tookMs > 2 * stallMs, `the transfer took only ${tookMs} ms`);
    const envelope = decodeEnvelope(peer.frames[0]!);
    assert.equal(envelope.kind, "msg");
    assert.ok(
      Buffer.from((envelope as { body: Uint8Array }).body).equals(Buffer.from(big)),
      "arrived intact",
    );
  } finally {
    for (const t of ticks) clearInterval(t);
    // No more dials to this peer (each would start another reader).
    for (const n of open) n.removePeer(peer.id.nodeId);
  }
});

for (const load of ["small frames", "a large frame that fills the send buffer"] as const) {
  test(`a peer that reads nothing (a black hole), sent ${load}, is dropped and redialled after stallMs`, {
    timeout: budget(60_000),
  }, async () => {
    const peer = await silentPeer((socket) => socket.pause());
    const a = await sender();
    a.setPeer(peer.id.nodeId, addr(peer.port), peer.id.certPem);
    await waitFor("a to connect", () => a.stats()[peer.id.nodeId]?.connected === true, 10_000);
    const began = Date.now();
    if (load === "small frames") {
      const limit = budget(30_000);
      for (let i = 0; peer.connections.length === 1 && Date.now() - began < limit; i++) {
        a.send(peer.id.nodeId, { heartbeat: i });
        await sleep(100);
      }
    } else {
      assert.equal(a.send(peer.id.nodeId, new Uint8Array(32 * 1024 * 1024)), true);
      // The kernel's buffers take a few MiB; the rest stays with a's socket.
      await waitFor("the redial", () => peer.connections.length > 1, 30_000);
    }
    assert.ok(peer.connections.length > 1, "a never redialled the black hole");
    const afterMs = peer.connections[1]! - began;
    assert.ok(afterMs >= STALL_MS, `redialled after ${afterMs} ms, before stallMs`);
    a.removePeer(peer.id.nodeId);
  });
}
