import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { GovClient } from "../../src/client/index.ts";
import { certFingerprint } from "../../src/crypto/index.ts";
import { signGovRequest } from "../../src/gov/index.ts";
import { startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const API = "api-version=2024-07-01";
const YES = "export function vote (proposal, proposerId) { return true }";

let net: TestNetwork;
let gov: GovClient;
let url: string;

before(async () => {
  // A service that waits for its members to open it (no openAtNodes), under Coco's own constitution.
  net = await startTestNetwork({ openAtNodes: 0 });
  url = `https://127.0.0.1:${net.running.port}`;
  gov = new GovClient({
    url,
    serviceCertPem: net.serviceCertPem,
    memberCertPem: net.identities.member.certPem,
    memberKeyPem: net.identities.member.privateKeyPem,
  });
});

after(async () => {
  await gov.close();
  await net.cleanup();
});

function signed(
  type: "proposal" | "ballot" | "withdrawal",
  payload: unknown,
  opts: { proposalId?: string; key?: string; createdAt?: number } = {},
) {
  return signGovRequest({
    keyPem: opts.key ?? net.identities.member.privateKeyPem,
    certPem: net.identities.member.certPem,
    type,
    createdAt: opts.createdAt ?? Math.floor(Date.now() / 1000),
    ...(opts.proposalId ? { proposalId: opts.proposalId } : {}),
    payload: new TextEncoder().encode(typeof payload === "string" ? payload : JSON.stringify(payload)),
  });
}

const post = (path: string, bytes: Uint8Array) =>
  net.call("POST", `${path}?${API}`, {
    as: "none",
    rawBody: bytes,
    headers: { "content-type": "application/cose" },
  });

test("members open the service by vote; the app is not served before", async () => {
  assert.equal((await net.call("GET", "/node/ready/app")).status, 503);
  const before = await gov
    .propose({ actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: 1 } }] })
    .catch((e) => e);
  assert.equal(before.status, 403, "an Accepted member must acknowledge the state first");
  await gov.activate();
  const members = await gov.get<{ value: Array<{ memberId: string; status: string }> }>(
    "/gov/service/members",
  );
  assert.equal(members.value.find((m) => m.memberId === gov.memberId)?.status, "Active");
  const proposal = await gov.propose({
    actions: [{ name: "transition_service_to_open", args: { next_service_identity: net.serviceCertPem } }],
  });
  assert.equal(proposal.proposalState, "Open");
  const voted = await gov.vote(proposal.proposalId, YES);
  assert.equal(voted.proposalState, "Accepted");
  assert.equal((await net.call("GET", "/node/ready/app")).status, 204);
  const info = await gov.get<{ status: string }>("/gov/service/info");
  assert.equal(info.status, "Open");
  assert.deepEqual(await gov.actions(proposal.proposalId), {
    actions: [{ name: "transition_service_to_open", args: { next_service_identity: net.serviceCertPem } }],
  });
});

test("bad governance requests are refused with a clear error and change nothing", async () => {
  const count = async () => (await gov.get<{ value: unknown[] }>("/gov/members/proposals")).value.length;
  const proposals = await count();
  const body = { actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: 1 } }] };

  const noVersion = await net.call("POST", "/gov/members/proposals:create", {
    as: "none",
    rawBody: signed("proposal", body),
  });
  assert.equal(noVersion.status, 400);
  assert.equal(noVersion.json().error.code, "UnsupportedApiVersion");

  const notCose = await post("/gov/members/proposals:create", new TextEncoder().encode(JSON.stringify(body)));
  assert.equal(notCose.status, 400);
  assert.equal(notCose.json().error.code, "InvalidCose");

  // The member's request with its signature altered: it no longer verifies under the member's key.
  const tampered = signed("proposal", body);
  tampered[tampered.length - 1]! ^= 0x01;
  const forged = await post("/gov/members/proposals:create", tampered);
  assert.equal(forged.status, 401);
  assert.equal(forged.json().error.code, "BadSignature");

  // A stranger signing as itself: no such member.
  const strangerSigned = signGovRequest({
    keyPem: net.identities.stranger.privateKeyPem,
    certPem: net.identities.stranger.certPem,
    type: "proposal",
    createdAt: Math.floor(Date.now() / 1000),
    payload: new TextEncoder().encode(JSON.stringify(body)),
  });
  const unknown = await post("/gov/members/proposals:create", strangerSigned);
  assert.equal(unknown.status, 401);
  assert.equal(unknown.json().error.code, "UnknownKid");

  const wrongType = await post(
    "/gov/members/proposals:create",
    signed("ballot", body, { proposalId: "0".repeat(64) }),
  );
  assert.equal(wrongType.json().error.code, "WrongMessageType");

  const stale = await post(
    "/gov/members/proposals:create",
    signed("proposal", body, { createdAt: Math.floor(Date.now() / 1000) - 3600 }),
  );
  assert.equal(stale.json().error.code, "Stale");

  for (const [what, payload, pattern] of [
    ["not JSON", "{", /JSON/],
    ["no actions", { actions: [] }, /actions/],
    ["unknown action", { actions: [{ name: "make_me_rich", args: {} }] }, /make_me_rich/],
    [
      "bad args",
      { actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: "x" } }] },
      /recovery_threshold/,
    ],
  ] as const) {
    const res = await post("/gov/members/proposals:create", signed("proposal", payload));
    assert.equal(res.status, 400, what);
    assert.equal(res.json().error.code, "ProposalFailedToValidate", what);
    assert.match(res.json().error.message, pattern, what);
  }

  // A good request, then the very same bytes again.
  const good = signed("proposal", body);
  const first = await post("/gov/members/proposals:create", good);
  assert.equal(first.status, 200, first.text);
  const replay = await post("/gov/members/proposals:create", good);
  assert.equal(replay.status, 400);
  assert.equal(replay.json().error.code, "Replay");
  assert.equal(await count(), proposals + 1, "only the good proposal was recorded");

  const id = first.json().proposalId as string;
  const ballotAsOther = await post(
    `/gov/members/proposals/${id}/ballots/${certFingerprint(net.identities.user.certPem)}:submit`,
    signed("ballot", { ballot: YES }, { proposalId: id }),
  );
  assert.equal(ballotAsOther.json().error.code, "MemberMismatch");
  const throwing = await gov.vote(id, "export function vote () { throw new Error('no opinion') }");
  assert.equal(throwing.proposalState, "Open");
  assert.match(throwing.voteFailures?.[gov.memberId]?.reason ?? "", /no opinion/);
  const withdrawn = await gov.withdraw(id);
  assert.equal(withdrawn.proposalState, "Withdrawn");
  const late = await gov.vote(id, YES).catch((e) => e);
  assert.equal(late.code, "ProposalNotOpen");
  const missing = await gov.show("f".repeat(64)).catch((e) => e);
  assert.equal(missing.status, 404);
});

test("a proposal whose apply throws ends Failed and its writes are discarded", async () => {
  const proposal = await gov.propose({
    actions: [
      { name: "set_recovery_threshold", args: { recovery_threshold: 7 } },
      { name: "transition_node_to_trusted", args: { node_id: "ab".repeat(32) } },
    ],
  });
  const result = await gov.vote(proposal.proposalId, YES);
  assert.equal(result.proposalState, "Failed");
  assert.match(result.failure?.reason ?? "", /no such node/);
  const info = await gov.get<{ recoveryThreshold: number }>("/gov/service/info");
  assert.equal(info.recoveryThreshold, 1, "the first action's write was rolled back with the failure");
});
