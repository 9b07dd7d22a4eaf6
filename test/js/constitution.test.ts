// CCF's own default constitution, unmodified, run through the sandbox.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { certFingerprint, createIdentityCertificate, createServiceIdentity } from "../../src/crypto/index.ts";
import { createJsEngine, createModuleSet, JsError, MemoryKv } from "../../src/js/index.ts";

const vectors = new URL("../../../shared/vectors/ccf/constitution-default/", import.meta.url);
const present = existsSync(new URL("actions.js", vectors));
// CCF's cchost concatenates the four files in this order, joined by "\n".
const constitution = present
  ? ["actions.js", "validate.js", "resolve.js", "apply.js"]
      .map((f) => readFileSync(new URL(f, vectors), "utf8"))
      .join("\n")
  : "";
const modules = createModuleSet({ "constitution.js": constitution || "export {}" });

const engine = await createJsEngine({
  env: { now: () => performance.now(), randomBytes: (n) => new Uint8Array(n) },
});
const now = new Date("2025-06-01T00:00:00Z");
const user = await createIdentityCertificate({ name: "user0", now, serial: new Uint8Array([1]) });
const memberCerts = await Promise.all(
  [0, 1, 2, 3].map((i) =>
    createIdentityCertificate({ name: `member${i}`, now, serial: new Uint8Array([10 + i]) }),
  ),
);
const memberIds = memberCerts.map((m) => certFingerprint(m.certPem));
const service = await createServiceIdentity({ now, serial: new Uint8Array([20]) });

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const json = (v: unknown) => utf8(JSON.stringify(v));
const SINGLETON = new Uint8Array(8); // CCF's key for single-value maps

function proposal(...actions: { name: string; args?: unknown }[]): string {
  return JSON.stringify({ actions });
}

function gov(fn: string, args: unknown[], extra: object = {}): unknown {
  return engine.call({ modules, entry: "constitution.js", fn, args, ...extra });
}

function validate(p: string): { valid: boolean; description: string } {
  return gov("validate", [p], { readOnly: true }) as { valid: boolean; description: string };
}

function membersKv(statuses: string[]): MemoryKv {
  const kv = new MemoryKv();
  statuses.forEach((status, i) => {
    kv.set("public:ccf.gov.members.info", utf8(memberIds[i] as string), json({ status }));
  });
  return kv;
}

test("validate accepts well-formed proposals", (t) => {
  if (!present) return t.skip("no vectors");
  const valid = [
    proposal({ name: "set_user", args: { cert: user.certPem, user_data: { role: "auditor" } } }),
    proposal({ name: "set_member", args: { cert: memberCerts[0]?.certPem, member_data: { name: "m0" } } }),
    proposal({ name: "transition_service_to_open", args: { next_service_identity: service.certPem } }),
    proposal({ name: "set_recovery_threshold", args: { recovery_threshold: 2 } }),
    proposal({ name: "set_constitution", args: { constitution } }),
    proposal(
      { name: "set_user", args: { cert: user.certPem } },
      { name: "trigger_ledger_rekey" },
      { name: "remove_user", args: { user_id: certFingerprint(user.certPem) } },
    ),
  ];
  for (const p of valid) assert.deepEqual(validate(p), { valid: true, description: "" }, p.slice(0, 80));
});

test("validate rejects unknown actions, bad certificates and wrong argument types, saying why", (t) => {
  if (!present) return t.skip("no vectors");
  assert.deepEqual(validate(proposal({ name: "launch_rockets" })), {
    valid: false,
    description: "launch_rockets: no such action",
  });
  const cases: [string, RegExp][] = [
    [
      proposal({
        name: "set_user",
        args: { cert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" },
      }),
      /^set_user at position 0 failed validation: Error: cert must be a valid X509 certificate \(bundle\) in PEM format/,
    ],
    [
      proposal({ name: "set_recovery_threshold", args: { recovery_threshold: "2" } }),
      /^set_recovery_threshold at position 0 failed validation: Error: threshold must be an integer/,
    ],
    [
      proposal({ name: "set_recovery_threshold", args: { recovery_threshold: 300 } }),
      /threshold must be lower than 254/,
    ],
    [
      proposal({ name: "set_user", args: { cert: user.certPem, user_data: "x" } }),
      /user_data must be of type object but is string/,
    ],
    [
      proposal({ name: "remove_member", args: { member_id: "abc" } }),
      /member_id must contain exactly 64 characters/,
    ],
    [proposal({ name: "trigger_ledger_rekey", args: { unexpected: true } }), /does not accept any argument/],
    [
      proposal(
        { name: "set_user", args: { cert: user.certPem } },
        { name: "set_constitution", args: { constitution: 5 } },
      ),
      /^set_constitution at position 1 failed validation: Error: undefined must be of type string/,
    ],
  ];
  for (const [p, pattern] of cases) {
    const result = validate(p);
    assert.equal(result.valid, false, p.slice(0, 80));
    assert.match(result.description, pattern);
  }
});

test("resolve accepts at a strict majority of active members and stays open otherwise", (t) => {
  if (!present) return t.skip("no vectors");
  const p = proposal({ name: "trigger_snapshot" });
  const votes = (n: number) => memberIds.slice(0, 4).map((member_id, i) => ({ member_id, vote: i < n }));
  const resolve = (kv: MemoryKv, ballots: unknown[]) =>
    gov("resolve", [p, memberIds[0], ballots], { kv, readOnly: true });
  // Three active members (the fourth only accepted): two votes make a majority.
  const three = membersKv(["Active", "Active", "Active", "Accepted"]);
  assert.equal(resolve(three, votes(0)), "Open");
  assert.equal(resolve(three, votes(1)), "Open");
  assert.equal(resolve(three, votes(2)), "Accepted");
  // Four active members: two is not a strict majority.
  const four = membersKv(["Active", "Active", "Active", "Active"]);
  assert.equal(resolve(four, votes(2)), "Open");
  assert.equal(resolve(four, votes(3)), "Accepted");
});

test("read-only mode refuses writes made by governance code", (t) => {
  if (!present) return t.skip("no vectors");
  // A constitution whose resolve tries to write: refused, and the KV is unchanged.
  const writing = createModuleSet({
    "constitution.js": constitution.replace(
      "export function resolve(proposal, proposerId, votes) {",
      'export function resolve(proposal, proposerId, votes) {\n  ccf.kv["public:ccf.gov.members.info"].set(ccf.strToBuf("x"), ccf.strToBuf("{}"));',
    ),
  });
  const kv = membersKv(["Active"]);
  const error = (() => {
    try {
      engine.call({
        modules: writing,
        entry: "constitution.js",
        fn: "resolve",
        args: ["{}", "m", []],
        kv,
        readOnly: true,
      });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(error instanceof JsError && error.kind === "exception");
  assert.match(error.message, /Cannot call set\(\) on map 'public:ccf\.gov\.members\.info'/);
  assert.equal(kv.size("public:ccf.gov.members.info"), 1);

  // Applying a proposal in a read-only call fails the same way, naming the first map written.
  const users = new MemoryKv();
  assert.throws(
    () =>
      gov("apply", [proposal({ name: "set_user", args: { cert: user.certPem } }), "p1"], {
        kv: users,
        readOnly: true,
      }),
    /public:ccf\.gov\.users\.certs/,
  );
  assert.deepEqual(users.mapNames(), []);
});

test("apply set_user writes the user's certificate and data under its id", (t) => {
  if (!present) return t.skip("no vectors");
  const kv = new MemoryKv();
  const id = utf8(certFingerprint(user.certPem));
  gov(
    "apply",
    [proposal({ name: "set_user", args: { cert: user.certPem, user_data: { role: "auditor" } } }), "p1"],
    { kv },
  );
  assert.equal(text(kv.get("public:ccf.gov.users.certs", id)), user.certPem);
  assert.deepEqual(JSON.parse(text(kv.get("public:ccf.gov.users.info", id)) ?? ""), {
    user_data: { role: "auditor" },
  });
  gov("apply", [proposal({ name: "set_user", args: { cert: user.certPem } }), "p2"], { kv });
  assert.equal(kv.get("public:ccf.gov.users.info", id), undefined, "no user_data removes the info");
  gov("apply", [proposal({ name: "remove_user", args: { user_id: certFingerprint(user.certPem) } }), "p3"], {
    kv,
  });
  assert.deepEqual(kv.mapNames(), []);
});

test("apply set_member records the member as Accepted with its ack state digest", (t) => {
  if (!present) return t.skip("no vectors");
  const kv = new MemoryKv();
  kv.set("public:ccf.internal.signatures", SINGLETON, json({ root: "00ff" }));
  const cert = memberCerts[3]?.certPem;
  gov("apply", [proposal({ name: "set_member", args: { cert, member_data: { n: 3 } } }), "p1"], { kv });
  const id = utf8(memberIds[3] as string);
  assert.equal(text(kv.get("public:ccf.gov.members.certs", id)), cert);
  assert.deepEqual(JSON.parse(text(kv.get("public:ccf.gov.members.info", id)) ?? ""), {
    member_data: { n: 3 },
    status: "Accepted",
  });
  assert.deepEqual(JSON.parse(text(kv.get("public:ccf.gov.members.acks", id)) ?? ""), {
    state_digest: "00ff",
  });
  // Without a signature the action calls set(key) with no value, which CCF's KV refuses too.
  assert.throws(
    () => gov("apply", [proposal({ name: "set_member", args: { cert } }), "p2"], { kv: new MemoryKv() }),
    /set: value must be an ArrayBuffer/,
  );
});

test("apply calls the service hooks: transition_service_to_open, set_recovery_threshold", (t) => {
  if (!present) return t.skip("no vectors");
  const kv = new MemoryKv();
  kv.set("public:ccf.gov.service.info", SINGLETON, json({ status: "Opening", cert: service.certPem }));
  kv.set("public:ccf.gov.service.config", SINGLETON, json({ recovery_threshold: 1 }));
  const calls: unknown[][] = [];
  const hooks = {
    node: {
      transitionServiceToOpen: (...args: unknown[]) => {
        calls.push(["open", ...args]);
      },
      triggerRecoverySharesRefresh: (...args: unknown[]) => {
        calls.push(["refresh", ...args]);
      },
    },
  };
  gov(
    "apply",
    [
      proposal({ name: "transition_service_to_open", args: { next_service_identity: service.certPem } }),
      "p1",
    ],
    {
      kv,
      hooks,
    },
  );
  assert.deepEqual(calls, [["open", undefined, utf8(service.certPem)]]);
  gov("apply", [proposal({ name: "set_recovery_threshold", args: { recovery_threshold: 3 } }), "p2"], {
    kv,
    hooks,
  });
  assert.deepEqual(calls[1], ["refresh"]);
  assert.deepEqual(JSON.parse(text(kv.get("public:ccf.gov.service.config", SINGLETON)) ?? ""), {
    recovery_threshold: 3,
  });
  // Without the hook the action fails clearly instead of silently doing nothing.
  assert.throws(
    () => gov("apply", [proposal({ name: "trigger_ledger_rekey" }), "p3"], { kv }),
    /ccf\.node\.triggerLedgerRekey is not available here/,
  );
});

test("apply set_constitution stores it and drops the other open proposals", (t) => {
  if (!present) return t.skip("no vectors");
  const kv = new MemoryKv();
  for (const [id, state] of [
    ["p1", "Open"],
    ["p2", "Open"],
    ["p3", "Accepted"],
  ]) {
    kv.set("public:ccf.gov.proposals_info", utf8(id as string), json({ proposer_id: "m", state }));
  }
  gov("apply", [proposal({ name: "set_constitution", args: { constitution: "new text" } }), "p1"], { kv });
  assert.equal(text(kv.get("public:ccf.gov.constitution", SINGLETON)), '"new text"');
  const state = (id: string) =>
    JSON.parse(text(kv.get("public:ccf.gov.proposals_info", utf8(id))) ?? "").state;
  assert.deepEqual(["p1", "p2", "p3"].map(state), ["Open", "Dropped", "Accepted"]);
});

test("a ballot module runs: vote(proposal, proposerId)", () => {
  const ballot = {
    "ballot.js": `export function vote(proposal, proposerId) {
      const { actions } = JSON.parse(proposal);
      return actions.every((a) => a.name === "set_user") && proposerId === "${memberIds[0]}";
    }`,
  };
  const vote = (p: string, proposer: string | undefined) =>
    engine.call({ modules: ballot, entry: "ballot.js", fn: "vote", args: [p, proposer], readOnly: true });
  assert.equal(vote(proposal({ name: "set_user", args: {} }), memberIds[0]), true);
  assert.equal(vote(proposal({ name: "set_user", args: {} }), memberIds[1]), false);
  assert.equal(vote(proposal({ name: "remove_user", args: {} }), memberIds[0]), false);
});
