import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { Agent, request } from "undici";
import { issueNodeCertificate, nodeIdOf } from "../../src/crypto/index.ts";
import { NodeChannels } from "../../src/net/index.ts";
import { newNodeKey } from "../../src/node/identity.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { generateEncryptionKey, signJoinProof } from "../../src/node/join.ts";
import { virtualAttestation } from "../../src/tee/index.ts";
import { budget } from "../e2e/waits.ts";
import { freePort } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";

// An attacker with network access to the nodes' ports and no credential at all, against a real
// 3-node service (real TLS between the nodes).
let cluster: Cluster;
let nodes: RunningNode[];
const SECRET = "user0's private record";

before(async () => {
  cluster = await Cluster.create();
  const n0 = await cluster.startService({ openAtNodes: 3 });
  await Promise.all([cluster.join("n1", n0), cluster.join("n2", n0)]);
  await cluster.untilOpen();
  nodes = cluster.nodes;
  const put = await cluster.call(cluster.primary()!, "PUT", "/app/log/private?id=1", {
    body: { msg: SECRET },
    headers: { "x-coco-wait": "commit" },
  });
  assert.equal(put.status, 200, put.text);
});

after(async () => {
  await cluster.stop();
});

/** A TCP listener at the address the attacker gives as its node address; counts who connects. */
async function trap(): Promise<{ address: string; connections: () => number; close(): Promise<void> }> {
  const port = await freePort();
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${port}`,
    connections: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A forged virtual join: a fresh key, the published measurement, no credential. */
async function forgedJoin(nodeAddress: string) {
  const key = await newNodeKey("127.0.0.1");
  const encryption = generateEncryptionKey();
  const body = {
    node_public_key: key.publicKeyPem,
    certificate_signing_request: key.csrPem,
    encryption_public_key: encryption.publicKeyPem,
    encryption_key_signature: signJoinProof(key.privateKeyPem, encryption.publicKeyPem),
    rpc_address: `127.0.0.1:${await freePort()}`,
    node_address: nodeAddress,
    attestation: virtualAttestation(key.publicKeyPem),
  };
  return { key, nodeId: nodeIdOf(key.publicKeyPem), body };
}

async function postJoin(node: RunningNode, body: unknown) {
  const dispatcher = new Agent({ connect: { ca: node.node.identity.serviceCertPem } });
  try {
    const res = await request(`https://127.0.0.1:${node.port}/node/join`, {
      method: "POST",
      dispatcher,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, text, json: () => JSON.parse(text) };
  } finally {
    await dispatcher.close();
  }
}

/**
 * Long enough for many heartbeats (100 ms) and two peer refreshes (1 s) on every node: an idle
 * machine's figure, stretched by the load so "nothing happened" still covers as much.
 */
const SETTLE_MS = 2_500;

test("(a) a forged virtual join gets Pending with no certificate and no secrets, and no node connects to it", {
  timeout: budget(60_000),
}, async () => {
  const listener = await trap();
  try {
    const forged = await forgedJoin(listener.address);
    const primary = cluster.primary()!;
    for (let i = 0; i < 3; i++) {
      const answer = await postJoin(primary, forged.body);
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(Object.keys(answer.json()).sort(), ["node_id", "service_certificate", "status"]);
      assert.equal(answer.json().status, "Pending");
      assert.doesNotMatch(answer.text, /node_certificate|wrapped_secrets|peers|PRIVATE KEY/);
      // The only certificate in the answer is the public service certificate.
      assert.equal((answer.text.match(/BEGIN CERTIFICATE/g) ?? []).length, 1);
    }
    await new Promise((r) => setTimeout(r, budget(SETTLE_MS)));
    assert.equal(listener.connections(), 0, "no node opened a connection to the forged node address");
    for (const node of nodes) {
      assert.equal(node.node.endorsedCertificate(forged.nodeId), undefined, "no certificate was endorsed");
      const row = node.node.nodes().find(([id]) => id === forged.nodeId)?.[1];
      assert.equal(row?.status, "Pending");
      assert.equal(row?.cert, undefined);
    }
    assert.equal(
      cluster
        .primary()
        ?.node.consensusStatus?.configs.flatMap((c) => c.nodes)
        .includes(forged.nodeId),
      false,
    );
  } finally {
    await listener.close();
  }
});

test("(b) a node connection with a certificate that is not a trusted node's endorsed one is refused; a forwarded call naming user0 gets nothing", {
  timeout: budget(60_000),
}, async () => {
  const listener = await trap();
  const primary = cluster.primary()!;
  // The strongest such certificate: one the service key itself issued for the attacker's key
  // (what a Pending joiner used to receive), for a node recorded Pending.
  const forged = await forgedJoin(listener.address);
  assert.equal((await postJoin(primary, forged.body)).json().status, "Pending");
  const identity = primary.node.identity;
  const certPem = await issueNodeCertificate({
    service: { certPem: identity.serviceCertPem, privateKeyPem: identity.servicePrivateKeyPem },
    nodePublicKeyPem: forged.key.publicKeyPem,
    now: new Date(),
    serial: crypto.getRandomValues(new Uint8Array(16)),
  });
  const attacker = await NodeChannels.listen({
    nodeId: forged.nodeId,
    certPem,
    privateKeyPem: forged.key.privateKeyPem,
    serviceCertPem: identity.serviceCertPem,
    listen: { host: "127.0.0.1", port: 0 },
    backoff: { initialMs: 20, maxMs: 200 },
  });
  const received: unknown[] = [];
  attacker.onMessage((_from, message) => received.push(message));
  attacker.onRequest(async (_from, message) => {
    received.push(message);
    return null;
  });
  try {
    const row = primary.node.nodes().find(([id]) => id === primary.node.nodeId)![1];
    attacker.setPeer(
      primary.node.nodeId,
      row.node_address!,
      primary.node.endorsedCertificate(primary.node.nodeId)!,
    );
    const userCert = new Uint8Array(new X509Certificate(cluster.user.certPem).raw);
    const call = {
      kind: "forwarded_call",
      method: "GET",
      url: "/app/log/private?id=1",
      headers: {},
      body: new Uint8Array(0),
      callerCert: userCert,
    };
    const outcome = await attacker.request(primary.node.nodeId, call, 3_000).then(
      (answer) => ({ answer }),
      (e: Error) => ({ error: e.message }),
    );
    assert.ok("error" in outcome, `the primary answered: ${JSON.stringify(outcome)}`);
    assert.equal(attacker.stats()[primary.node.nodeId]?.connected, false, "the primary never accepted it");
    // Behind the channel, the primary runs forwarded calls only for Trusted nodes.
    const peers = (
      primary.node as unknown as { peers: { serve(from: string, m: unknown): Promise<unknown> } }
    ).peers;
    const served = (await peers.serve(forged.nodeId, call)) as { status: number; body: Uint8Array };
    assert.equal(served.status, 403);
    assert.doesNotMatch(Buffer.from(served.body).toString(), new RegExp(SECRET));
    await new Promise((r) => setTimeout(r, budget(500)));
    assert.deepEqual(received, [], "nothing reached the attacker");
    assert.equal(listener.connections(), 0);
  } finally {
    await attacker.close();
    await listener.close();
  }
});

test("(c) raft messages claiming a higher view from a non-member do not depose the primary; writes keep committing", {
  timeout: budget(60_000),
}, async () => {
  const primary = cluster.primary()!;
  const status = primary.node.consensusStatus!;
  const attackerId = nodeIdOf((await newNodeKey("127.0.0.1")).publicKeyPem);
  const forged = [
    {
      type: "heartbeat",
      from: attackerId,
      to: primary.node.nodeId,
      view: status.view + 10,
      commitSeqno: 0,
      round: 1,
    },
    {
      type: "append_entries",
      from: attackerId,
      to: primary.node.nodeId,
      view: status.view + 11,
      prevSeqno: 0,
      prevView: 0,
      entries: [],
      commitSeqno: 0,
    },
    {
      type: "request_vote",
      from: attackerId,
      to: primary.node.nodeId,
      view: status.view + 12,
      lastSeqno: 10_000,
      lastView: status.view + 11,
      handover: true,
    },
  ];
  // As if the channel had let the attacker through: straight into every node's consensus.
  for (const node of nodes) {
    const replica = (node.node as unknown as { replica: { step(from: string, m: unknown): void } }).replica;
    for (const m of forged) replica.step(attackerId, { ...m, to: node.node.nodeId });
  }
  assert.equal(cluster.primary(), primary, "the primary still leads");
  assert.equal(primary.node.consensusStatus?.view, status.view, "its view did not move");
  assert.ok((primary.node.consensusStatus?.nonMemberMessages ?? 0) >= forged.length, "the drops are counted");
  const lastSeqno = primary.node.state.lastSeqno;
  for (let i = 0; i < 5; i++) {
    const put = await cluster.call(nodes[i % nodes.length]!, "PUT", `/app/log/public?id=${100 + i}`, {
      body: { msg: `after the attack ${i}` },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(put.status, 200, put.text);
  }
  assert.ok(primary.node.state.commitSeqno > lastSeqno, "client writes committed");
  assert.equal(primary.node.consensusStatus?.view, status.view);
});
