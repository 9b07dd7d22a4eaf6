import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Raft } from "../../src/consensus/index.ts";
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  sha256,
} from "../../src/crypto/index.ts";
import { decodeEntry, LedgerInvariantError, LedgerSecrets } from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import { type LedgerSink, LedgerState, type SigningKeys } from "../../src/node/ledger-state.ts";
import { Replica, type ReplicaHooks, type ReplicaStorage } from "../../src/node/replica.ts";

/**
 * The replica on in-memory storage and a hand-run scheduler (the seams the simulator uses), with
 * a real Raft and a real ledger state; and the invariants the replica and the ledger state assert.
 */

const env: Environment = { now: () => 1_800_000_000_000, randomBytes: (n) => new Uint8Array(n).fill(1) };
const secret = { version: 0, key: new Uint8Array(32).fill(7) };
let keys: SigningKeys;

before(async () => {
  const service = await createServiceIdentity({ now: new Date(), serial: new Uint8Array([1]) });
  const node = generateP384KeyPair();
  keys = {
    nodeId: nodeIdOf(node.publicKeyPem),
    nodeCertPem: await issueNodeCertificate({
      service,
      nodePublicKeyPem: node.publicKeyPem,
      now: new Date(),
      serial: new Uint8Array([2]),
    }),
    nodePrivateKey: p384PrivateKey(node.privateKeyPem),
    servicePrivateKey: p384PrivateKey(service.privateKeyPem),
    serviceKid: sha256(new TextEncoder().encode("kid")),
  };
});

/** Entries are written at once and become durable when the test calls `sync`. */
class MemoryStorage implements ReplicaStorage {
  readonly entries: Array<{ seqno: number; isSignature: boolean }> = [];
  private readonly listeners: Array<(seqno: number) => void> = [];
  append(seqno: number, _frame: Uint8Array, isSignature: boolean): void {
    this.entries.push({ seqno, isSignature });
  }
  truncate(afterSeqno: number): Promise<void> {
    while ((this.entries.at(-1)?.seqno ?? 0) > afterSeqno) this.entries.pop();
    return Promise.resolve();
  }
  onDurable(listener: (seqno: number) => void): void {
    this.listeners.push(listener);
  }
  sync(): void {
    const last = this.entries.at(-1)?.seqno ?? 0;
    for (const listener of this.listeners) listener(last);
  }
}

/** Runs deferred work only when the test says so. */
class ManualScheduler {
  private queued: Array<() => void> = [];
  get pending(): number {
    return this.queued.length;
  }
  afterIo(run: () => void): void {
    this.queued.push(run);
  }
  runAll(): void {
    const queued = this.queued;
    this.queued = [];
    for (const run of queued) run();
  }
}

const quietLog = { warn: () => undefined, error: () => undefined };

/**
 * A lone node, primary once it campaigned (in view `view + 1`), whose Raft log starts after
 * `start` (a snapshot point) and whose ledger state is `state`.
 */
function loneReplica(state: LedgerState, start = 0, view = 0) {
  const raft = new Raft({
    id: "a",
    random: () => 0.5,
    log: { start: { seqno: start, view: 0, config: ["a"] }, entries: [] },
    hardState: { view, votedFor: null },
  });
  const storage = new MemoryStorage();
  const scheduler = new ManualScheduler();
  const committed: number[] = [];
  const hooks: ReplicaHooks = {
    send: () => undefined,
    saveHardState: () => undefined,
    roleChanged: (change) => {
      if (change.role === "primary") state.enterView(change.view);
    },
    committed: (seqno) => committed.push(seqno),
    readReady: () => undefined,
    applied: () => undefined,
    rolledBack: () => undefined,
    sendSnapshot: () => undefined,
  };
  const replica = new Replica(raft, state, storage, hooks, quietLog, scheduler);
  assert.equal(raft.campaignNow(), true);
  replica.process();
  return { raft, replica, storage, scheduler, committed };
}

/** A ledger state whose entries go to `replica()` once it exists (as on a node). */
function primaryState(view = 0): { state: LedgerState; sink: { replica?: Replica } } {
  const sink: { replica?: Replica } = {};
  const ledgerSink: LedgerSink = {
    append: (seqno, frame, isSignature, config) =>
      sink.replica?.append(seqno, frame, isSignature, config) ?? false,
  };
  return { state: new LedgerState(env, keys, new LedgerSecrets([secret]), ledgerSink, view), sink };
}

function write(state: LedgerState, key: string): void {
  const tx = state.store.begin();
  tx.map("public:records").set(new TextEncoder().encode(key), new TextEncoder().encode("v"));
  const outcome = state.commitTx(tx);
  assert.ok(outcome.ok && outcome.seqno !== null);
}

describe("Replica", () => {
  it("hands writes over after this turn's I/O, a signature at once; commits once it is durable", () => {
    const { state, sink } = primaryState();
    const { raft, replica, storage, scheduler, committed } = loneReplica(state);
    sink.replica = replica;
    assert.equal(raft.role, "primary");
    write(state, "x");
    write(state, "y");
    // Proposed to consensus, but persisted only when the scheduler runs: one batch for both.
    assert.equal(raft.lastSeqno, 2);
    assert.equal(storage.entries.length, 0);
    assert.equal(scheduler.pending, 1);
    scheduler.runAll();
    assert.deepEqual(
      storage.entries.map((e) => e.seqno),
      [1, 2],
    );
    const signature = state.emitSignature();
    assert.deepEqual(storage.entries.at(-1), { seqno: signature, isSignature: true });
    assert.deepEqual(committed, []);
    storage.sync();
    assert.deepEqual(committed, [signature]);
    assert.equal(state.commitSeqno, signature);
  });

  it("throws LedgerInvariantError when consensus hands over an entry past the ledger state's end", () => {
    const { state } = primaryState();
    // Consensus's log starts after seqno 5, the state holds nothing: they disagree.
    const { raft, replica } = loneReplica(state, 5);
    assert.equal(raft.role, "primary");
    raft.propose([{ seqno: 6, view: raft.view, isSignature: false, data: new Uint8Array(8) }]);
    assert.throws(
      () => replica.process(),
      (e: Error) =>
        e instanceof LedgerInvariantError && /consensus hands seqno 6 to persist after 0/.test(e.message),
    );
  });

  it("throws LedgerInvariantError when consensus persists an entry of another view than the state's", () => {
    // The state holds seqno 1 made in view 3; consensus, in view 5, proposes its own seqno 1.
    const frames: Uint8Array[] = [];
    const maker = new LedgerState(
      env,
      keys,
      new LedgerSecrets([secret]),
      { append: (_s, frame) => frames.push(frame) > 0 },
      3,
    );
    write(maker, "x");
    const state = LedgerState.restore({
      env,
      keys,
      secrets: new LedgerSecrets([secret]),
      sink: { append: () => false },
      entries: frames.map((f) => decodeEntry(f)),
    });
    const { raft, replica } = loneReplica(state, 0, 4);
    assert.equal(raft.view, 5);
    raft.propose([{ seqno: 1, view: 5, isSignature: false, data: frames[0]! }]);
    assert.throws(
      () => replica.process(),
      (e: Error) =>
        e instanceof LedgerInvariantError &&
        /consensus hands 5\.1 to persist, the ledger state holds view 3 there/.test(e.message),
    );
  });
});

describe("LedgerState invariants", () => {
  it("the commit point never moves back (LedgerInvariantError); marking the same point again is fine", () => {
    const { state, sink } = primaryState();
    const { replica, storage } = loneReplica(state);
    sink.replica = replica;
    write(state, "x");
    const first = state.emitSignature();
    write(state, "y");
    const second = state.emitSignature();
    storage.sync();
    assert.equal(state.commitSeqno, second);
    state.markCommitted(second);
    assert.throws(
      () => state.markCommitted(first),
      (e: Error) =>
        e instanceof LedgerInvariantError && /commit point would move back from 4 to 2/.test(e.message),
    );
    assert.equal(state.commitSeqno, second);
  });

  it("the store, the Merkle tree and the ledger end at the same seqno (LedgerInvariantError)", () => {
    const { state } = standalone();
    write(state, "x");
    // White-box: a leaf the ledger does not hold (nothing public can do this; a bug could).
    (state as unknown as { tree: { append(leaf: Uint8Array): void } }).tree.append(new Uint8Array(32));
    assert.throws(
      () => write(state, "y"),
      (e: Error) =>
        e instanceof LedgerInvariantError &&
        /the ledger ends at 2, its Merkle tree at 3, its store at 2/.test(e.message),
    );
  });
});

/** A ledger state on its own, its entries accepted and dropped. */
function standalone(): { state: LedgerState } {
  return { state: new LedgerState(env, keys, new LedgerSecrets([secret]), { append: () => true }, 1) };
}
