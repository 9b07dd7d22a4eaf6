import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import fc from "fast-check";
import { encodeEnvelope } from "../../src/net/envelope.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { makeIdentity } from "../helpers/network.ts";
import { type FuzzTarget, Tally } from "./harness.ts";
import { mutated } from "./mutate.ts";

/**
 * Garbage on the node-to-node port of a real two-node service (each needs the other for a
 * quorum, so a channel broken by garbage would stop commits): bytes over plain TCP, over TLS
 * without a certificate, and over TLS with a certificate no node trusts. The node closes such
 * connections; at the end a write still commits on both.
 */
interface PortInput {
  node: number;
  how: "tcp" | "tls" | "tls-stranger";
  bytes: Uint8Array;
}

/** How long one hostile connection may stay open before the test closes it itself. */
const LINGER_MS = 300;

export function nodePortTarget(): FuzzTarget<PortInput> {
  const tally = new Tally();
  let cluster: Cluster | undefined;
  let nodes: RunningNode[] = [];
  let stranger: { certPem: string; privateKeyPem: string } | undefined;
  const frames = [
    encodeFrame(encodeEnvelope({ kind: "hello", version: 1 })),
    encodeFrame(
      encodeEnvelope({
        kind: "msg",
        body: { type: "heartbeat", from: "x", to: "y", view: 9, commitSeqno: 1, round: 1 },
      }),
    ),
    Buffer.from("GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
  ].map((b) => new Uint8Array(b));
  return {
    name: "node-port",
    parser: "a running node's node-to-node listener (src/net channels: TLS, framing, envelopes)",
    tally,
    input: fc.record({
      node: fc.nat({ max: 1 }),
      how: fc.constantFrom("tcp", "tls", "tls-stranger"),
      bytes: mutated(frames),
    }),
    async setup() {
      cluster = await Cluster.create();
      const first = await cluster.startService({ openAtNodes: 2 });
      await cluster.join("n1", first);
      await cluster.untilOpen();
      nodes = cluster.nodes;
      stranger = await makeIdentity("stranger");
    },
    async teardown() {
      if (!cluster) return;
      try {
        const primary = cluster.primary() ?? nodes[0]!;
        const write = await cluster.call(primary, "POST", "/app/log/private", {
          body: { id: 7, msg: "after garbage" },
        });
        if (write.status !== 200)
          throw new Error(`after garbage on node ports, a write got ${write.status}: ${write.text}`);
        for (const node of nodes) {
          await cluster.until("both nodes serve the write", async () => {
            const read = await cluster!.call(node, "GET", "/app/log/private?id=7", {
              headers: { "x-coco-read": "linearizable" },
            });
            return read.status === 200;
          });
        }
      } finally {
        await cluster.stop();
        cluster = undefined;
      }
    },
    async check(input) {
      const node = nodes[input.node]!;
      const { port } = node.node.config.nodeAddress;
      const socket: Socket =
        input.how === "tcp"
          ? netConnect(port, "127.0.0.1")
          : tlsConnect({
              host: "127.0.0.1",
              port,
              rejectUnauthorized: false,
              ...(input.how === "tls-stranger" && stranger
                ? { cert: stranger.certPem, key: stranger.privateKeyPem }
                : {}),
            });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => socket.destroy(), LINGER_MS);
        socket.on("error", () => {});
        socket.on("close", () => {
          clearTimeout(timer);
          resolve();
        });
        socket.on(input.how === "tcp" ? "connect" : "secureConnect", () => socket.write(input.bytes));
      });
      tally.refused++;
    },
  };
}
