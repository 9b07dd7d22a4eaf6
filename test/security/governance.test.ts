import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Agent, request } from "undici";
import { CocoClientError, type GovClient } from "../../src/client/index.ts";
import { certFingerprint } from "../../src/crypto/index.ts";
import { signGovRequest } from "../../src/gov/index.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { govClient, type Identity, makeIdentity, passProposal } from "../helpers/network.ts";

/**
 * Issue 11, finding 4 and part of 7: one member must not be able to lock the others out of
 * governance, nor flood it. Performed against a real 3-node network over HTTPS.
 */

let cluster: Cluster;
let node: RunningNode;
let member0: GovClient;
let mallory: Identity;
let malloryId: string;
let agent: Agent;

const nowSeconds = () => Math.floor(Date.now() / 1000);

before(async () => {
  cluster = await Cluster.create();
  // A real 3-node network; governance requests go to its primary.
  const n0 = await cluster.startService({ openAtNodes: 3 });
  await cluster.join("n1", n0);
  await cluster.join("n2", n0);
  await cluster.untilOpen();
  node = cluster.primary() ?? n0;
  member0 = await cluster.gov(node);
  mallory = await makeIdentity("mallory");
  malloryId = certFingerprint(mallory.certPem);
  await passProposal(member0, "set_member", { cert: mallory.certPem });
  agent = new Agent({ connect: { ca: node.node.identity.serviceCertPem } });
});

after(async () => {
  await agent.close();
  await cluster.stop();
});

/** Posts a request signed by `who`, dated `createdAt`; answers status, error code and headers. */
async function signedPost(
  who: Identity,
  path: string,
  type: "proposal" | "state_digest" | "ack" | "withdrawal",
  createdAt: number,
  payload: unknown = "",
  proposalId?: string,
) {
  const bytes = signGovRequest({
    keyPem: who.privateKeyPem,
    certPem: who.certPem,
    type,
    createdAt,
    ...(proposalId ? { proposalId } : {}),
    payload: new TextEncoder().encode(typeof payload === "string" ? payload : JSON.stringify(payload)),
  });
  return postBytes(path, bytes);
}

async function postBytes(path: string, bytes: Uint8Array) {
  const res = await request(`${cluster.url(node, path)}?api-version=2024-07-01`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/cose" },
    body: Buffer.from(bytes),
  });
  const text = await res.body.text();
  const json = text ? JSON.parse(text) : {};
  return { status: res.statusCode, code: json.error?.code as string | undefined, headers: res.headers, json };
}

/** The store's version once it has stopped moving (signatures settle after each write). */
async function settledVersion(): Promise<number> {
  for (;;) {
    const v = node.node.state.store.version;
    await new Promise((r) => setTimeout(r, 150));
    if (node.node.state.store.version === v) return v;
  }
}

const proposal = (n: number) => ({
  actions: [{ name: "set_user_data", args: { user_id: "0".repeat(64), n } }],
});

describe("governance requests: one member cannot lock out the others", () => {
  test("a member that is not Active: state digest updates are rate limited, far-future dates refused", async () => {
    const path = `/gov/members/state-digests/${malloryId}:update`;
    const first = await signedPost(mallory, path, "state_digest", nowSeconds() + 30);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const version = await settledVersion();
    const second = await signedPost(mallory, path, "state_digest", nowSeconds() + 29);
    assert.equal(second.status, 429);
    assert.equal(second.code, "TooManyRequests");
    assert.ok(Number(second.headers["retry-after"]) >= 1, "Retry-After says when");
    // The lock-out of issue 11 dated requests up to +219 s: now refused outright.
    const ahead = await signedPost(mallory, path, "state_digest", nowSeconds() + 219);
    assert.equal(ahead.status, 400);
    assert.equal(ahead.code, "FutureCreatedAt");
    assert.equal(await settledVersion(), version, "nothing was written");
  });

  test("a flood of requests dated ahead fills only the sender's window: others still govern", async () => {
    // Mallory becomes Active, then sends well over 100 requests dated +30 s (the most allowed).
    const digest = await signedPost(
      mallory,
      `/gov/members/state-digests/${malloryId}:update`,
      "state_digest",
      nowSeconds(),
    );
    if (digest.status === 429) await new Promise((r) => setTimeout(r, 10_500));
    const malloryGov = govClient(cluster.url(node, ""), node.node.identity.serviceCertPem, mallory);
    await malloryGov.activate();
    let sent = 0;
    for (let i = 0; sent < 120; i++) {
      const created = await signedPost(
        mallory,
        "/gov/members/proposals:create",
        "proposal",
        nowSeconds() + 30,
        proposal(i),
      );
      assert.equal(created.status, 200, JSON.stringify(created.json));
      const id = created.json.proposalId as string;
      const withdrawn = await signedPost(
        mallory,
        `/gov/members/proposals/${id}:withdraw`,
        "withdrawal",
        nowSeconds() + 30,
        "",
        id,
      );
      assert.equal(withdrawn.status, 200, JSON.stringify(withdrawn.json));
      sent += 2;
    }
    await malloryGov.close();
    // Past its window's cap, mallory has only moved its own horizon: its undated-ahead requests
    // wait out the future allowance (at most ~30 s), nobody else's do.
    const own = await signedPost(
      mallory,
      "/gov/members/proposals:create",
      "proposal",
      nowSeconds(),
      proposal(-3),
    );
    assert.equal(own.status, 400);
    assert.equal(own.code, "Stale");
    // Before the fix, member0's fresh proposal was refused 400 Stale here for minutes.
    const fresh = await member0.propose(proposal(-1));
    assert.equal(fresh.proposalState, "Open");
    await member0.withdraw(fresh.proposalId);
  });

  test("replays are refused: the same signed bytes twice, and nothing is written", async () => {
    const bytes = signGovRequest({
      keyPem: cluster.member.privateKeyPem,
      certPem: cluster.member.certPem,
      type: "proposal",
      createdAt: nowSeconds(),
      payload: new TextEncoder().encode(JSON.stringify(proposal(-2))),
    });
    const first = await postBytes("/gov/members/proposals:create", bytes);
    assert.equal(first.status, 200);
    const version = await settledVersion();
    const again = await postBytes("/gov/members/proposals:create", bytes);
    assert.equal(again.status, 400);
    assert.equal(again.code, "Replay");
    assert.equal(await settledVersion(), version, "nothing was written");
    await member0.withdraw(first.json.proposalId);
  });

  test("open proposals per member are capped (429), and the cap refuses before writing", async () => {
    const opened: string[] = [];
    for (let i = 0; i < 10; i++) {
      const view = await member0.propose(proposal(100 + i));
      assert.equal(view.proposalState, "Open");
      opened.push(view.proposalId);
    }
    const version = await settledVersion();
    const refused = await member0.propose(proposal(200)).catch((e) => e);
    assert.ok(refused instanceof CocoClientError, String(refused));
    assert.equal(refused.status, 429);
    assert.equal(refused.code, "TooManyOpenProposals");
    assert.equal(await settledVersion(), version, "nothing was written");
    // Withdrawing one makes room again.
    await member0.withdraw(opened[0]!);
    assert.equal((await member0.propose(proposal(201))).proposalState, "Open");
  });
});
