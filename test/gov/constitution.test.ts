import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { before, test } from "node:test";
import { certFingerprint, createIdentityCertificate } from "../../src/crypto/index.ts";
import {
  type Constitution,
  createProposal,
  type GovError,
  submitBallot,
  withdrawProposal,
} from "../../src/gov/index.ts";
import { createJsEngine, type JsEngine, jsConstitution } from "../../src/js/index.ts";
import { Store, type Tx } from "../../src/kv/index.ts";
import {
  Tables as GovTables,
  readJson,
  SINGLETON_KEY as SINGLETON,
  utf8,
  writeJson,
} from "../../src/ledger/index.ts";

const CCF = new URL("../../../shared/vectors/ccf/constitution-default/", import.meta.url);
const hasVectors = existsSync(CCF);

/** CCF's default constitution, concatenated as CCF does: actions, validate, resolve, apply. */
function ccfConstitution(): string {
  return ["actions.js", "validate.js", "resolve.js", "apply.js"]
    .map((f) => readFileSync(new URL(f, CCF), "utf8"))
    .join("\n");
}

let engine: JsEngine;
const opened: string[] = [];
let constitution: Constitution;
let members: Array<{ id: string; cert: string }> = [];

async function identity(name: string) {
  const { certPem } = await createIdentityCertificate({ name, now: new Date(), serial: new Uint8Array([1]) });
  return { id: certFingerprint(certPem), cert: certPem };
}

before(async () => {
  engine = await createJsEngine({ env: { now: () => Date.now(), randomBytes: (n) => new Uint8Array(n) } });
  constitution = jsConstitution(engine, () => ({
    node: {
      transitionServiceToOpen: (...args: unknown[]) => {
        opened.push(new TextDecoder().decode(args[1] as Uint8Array));
      },
    },
  }));
  members = [await identity("m0"), await identity("m1"), await identity("m2")];
});

function service(active: number): Store {
  const store = new Store();
  const tx = store.begin();
  tx.map(GovTables.constitution).set(SINGLETON, utf8(ccfConstitution()));
  writeJson(tx, GovTables.serviceInfo, SINGLETON, { status: "Opening", cert: members[0]!.cert });
  writeJson(tx, GovTables.serviceConfig, SINGLETON, { recovery_threshold: 1 });
  writeJson(tx, GovTables.signatures, SINGLETON, { root: "ab".repeat(32) });
  members.forEach((m, i) => {
    tx.map(GovTables.membersCerts).set(utf8(m.id), utf8(m.cert));
    writeJson(tx, GovTables.membersInfo, utf8(m.id), { status: i < active ? "Active" : "Accepted" });
  });
  assert.ok(store.commit(tx).ok);
  return store;
}

function inTx<T>(store: Store, work: (tx: Tx) => T): T {
  const tx = store.begin();
  const result = work(tx);
  assert.ok(store.commit(tx).ok);
  return result;
}

const proposal = (actions: unknown[]) => utf8(JSON.stringify({ actions }));
let digestCounter = 0;
const digest = () => new Uint8Array(32).fill(++digestCounter);

test("CCF's default constitution runs unmodified: a lone active member's proposal passes on its own vote", {
  skip: !hasVectors && "no vectors",
}, async () => {
  const store = service(1);
  const user = await identity("user1");
  const created = inTx(store, (tx) =>
    createProposal(tx, constitution, {
      memberId: members[0]!.id,
      body: proposal([{ name: "set_user", args: { cert: user.cert } }]),
      requestDigest: digest(),
    }),
  );
  assert.equal(created.proposalState, "Open", "the proposer votes like any member");
  const view = inTx(store, (tx) =>
    submitBallot(tx, constitution, {
      memberId: members[0]!.id,
      proposalId: created.proposalId,
      body: utf8(JSON.stringify({ ballot: "export function vote (proposal, proposerId) { return true }" })),
    }),
  );
  assert.equal(view.proposalState, "Accepted", JSON.stringify(view));
  const tx = store.begin();
  assert.equal(new TextDecoder().decode(tx.map(GovTables.usersCerts).get(utf8(user.id))), user.cert);
  tx.abandon();
});

test("votes: strict majority of active members; ballots re-run; withdraw; bad proposals refused", {
  skip: !hasVectors && "no vectors",
}, () => {
  const store = service(3);
  const yes = "export function vote (proposal, proposerId) { return true }";
  const no = "export function vote (proposal, proposerId) { return false }";
  const open = inTx(store, (tx) =>
    createProposal(tx, constitution, {
      memberId: members[0]!.id,
      body: proposal([
        { name: "transition_service_to_open", args: { next_service_identity: members[0]!.cert } },
      ]),
      requestDigest: digest(),
    }),
  );
  assert.equal(open.proposalState, "Open");
  const ballot = (memberId: string, source: string) =>
    inTx(store, (tx) =>
      submitBallot(tx, constitution, {
        memberId,
        proposalId: open.proposalId,
        body: utf8(JSON.stringify({ ballot: source })),
      }),
    );
  assert.equal(ballot(members[0]!.id, yes).proposalState, "Open");
  assert.throws(
    () => ballot(members[0]!.id, yes),
    (e: GovError) => e.code === "VoteAlreadyExists",
  );
  const done = ballot(members[1]!.id, yes);
  assert.equal(done.proposalState, "Accepted");
  assert.deepEqual(done.finalVotes, { [members[0]!.id]: true, [members[1]!.id]: true });
  assert.equal(opened.length, 1, "apply called the service hook");

  const other = inTx(store, (tx) =>
    createProposal(tx, constitution, {
      memberId: members[1]!.id,
      body: proposal([{ name: "set_recovery_threshold", args: { recovery_threshold: 2 } }]),
      requestDigest: digest(),
    }),
  );
  assert.throws(
    () =>
      inTx(store, (tx) => withdrawProposal(tx, { memberId: members[0]!.id, proposalId: other.proposalId })),
    (e: GovError) => e.status === 403,
  );
  assert.equal(
    inTx(store, (tx) => withdrawProposal(tx, { memberId: members[1]!.id, proposalId: other.proposalId }))
      .proposalState,
    "Withdrawn",
  );
  const rejected = inTx(store, (tx) =>
    createProposal(tx, constitution, {
      memberId: members[1]!.id,
      body: proposal([{ name: "set_recovery_threshold", args: { recovery_threshold: 3 } }]),
      requestDigest: digest(),
    }),
  );
  const throwing = "export function vote () { throw new Error('ballot broke') }";
  const afterThrow = inTx(store, (tx) =>
    submitBallot(tx, constitution, {
      memberId: members[2]!.id,
      proposalId: rejected.proposalId,
      body: utf8(JSON.stringify({ ballot: throwing })),
    }),
  );
  assert.equal(afterThrow.proposalState, "Open");
  assert.match(afterThrow.voteFailures?.[members[2]!.id]?.reason ?? "", /ballot broke/);
  inTx(store, (tx) =>
    submitBallot(tx, constitution, {
      memberId: members[0]!.id,
      proposalId: rejected.proposalId,
      body: utf8(JSON.stringify({ ballot: no })),
    }),
  );

  const refuse = (actions: unknown[], pattern: RegExp) =>
    assert.throws(
      () =>
        inTx(store, (tx) =>
          createProposal(tx, constitution, {
            memberId: members[0]!.id,
            body: proposal(actions),
            requestDigest: digest(),
          }),
        ),
      (e: GovError) => e.code === "ProposalFailedToValidate" && pattern.test(e.message),
    );
  refuse([{ name: "no_such_action", args: {} }], /no_such_action/);
  refuse([{ name: "set_user", args: { cert: "not a cert" } }], /cert/);
  refuse([{ name: "set_recovery_threshold", args: { recovery_threshold: "two" } }], /integer/);
  assert.throws(
    () =>
      inTx(store, (tx) =>
        createProposal(tx, constitution, {
          memberId: members[0]!.id,
          body: utf8("{"),
          requestDigest: digest(),
        }),
      ),
    (e: GovError) => e.code === "ProposalFailedToValidate",
  );
  const tx = store.begin();
  assert.equal(
    readJson<{ recovery_threshold: number }>(tx, GovTables.serviceConfig, SINGLETON)?.recovery_threshold,
    1,
  );
  tx.abandon();
});

test("an accepted member may not propose until it acknowledges; scripts that loop are stopped", {
  skip: !hasVectors && "no vectors",
}, () => {
  const store = service(1);
  assert.throws(
    () =>
      inTx(store, (tx) =>
        createProposal(tx, constitution, {
          memberId: members[1]!.id,
          body: proposal([{ name: "set_recovery_threshold", args: { recovery_threshold: 1 } }]),
          requestDigest: digest(),
        }),
      ),
    (e: GovError) => e.status === 403 && /Active/.test(e.message),
  );
  const loop = jsConstitution(engine, () => ({}), { steps: 100 });
  const tx = store.begin();
  tx.map(GovTables.constitution).set(
    SINGLETON,
    utf8(
      "export function validate() { while (true) {} }\nexport function resolve() { return 'Open' }\nexport function apply() {}",
    ),
  );
  assert.throws(
    () =>
      createProposal(tx, loop, {
        memberId: members[0]!.id,
        body: proposal([{ name: "x", args: {} }]),
        requestDigest: digest(),
      }),
    (e: GovError) => /used more than its execution budget of 100 steps/.test(e.message),
  );
  tx.abandon();
});
