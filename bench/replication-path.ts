/**
 * The replicated write path in one process, without TLS, disk or timers: a primary and two
 * backups, each a real `LedgerState` driven by a real `Raft` through the node's `Replica`, with
 * every message going through the node-to-node codec (envelope, length-prefixed frame, the
 * frame decoder) as it does on a socket. The primary commits `--batch` writes per event-loop
 * turn and a signature every `--sign-every` writes (as the paced scheduler does under load);
 * storage is in memory and reports each batch durable at once ("fsync" costs nothing here).
 *
 * It prints the CPU time (process.cpuUsage: user + system, so GC threads count) per committed
 * write spent on the primary's side (execution-free commit, encode, encrypt, replication framing,
 * acknowledgements, commit) and on each backup's side (frame and message decode, consensus,
 * entry decode, decrypt, apply, commit evidence, Merkle, signature checks, acknowledgements).
 *
 * For an A/B of two source trees, run it once per tree, alternating:
 *
 *   npx tsx bench/replication-path.ts [--src DIR] [--writes 40000] [--rounds 4] [--batch 8]
 *        [--sign-every 32] [--curve secp384r1|secp256r1] [--value-bytes 100]
 *
 * `--src` is the `src` directory to load (default: this tree's); the harness uses only
 * interfaces older trees have too.
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

type ConsensusModule = typeof import("../src/consensus/index.ts");
type CryptoModule = typeof import("../src/crypto/index.ts");
type LedgerModule = typeof import("../src/ledger/index.ts");
type ReplicaModule = typeof import("../src/node/replica.ts");
type EnvelopeModule = typeof import("../src/net/envelope.ts");
type FrameModule = typeof import("../src/net/frame.ts");

const { values } = parseArgs({
  options: {
    src: { type: "string" },
    writes: { type: "string", default: "40000" },
    rounds: { type: "string", default: "4" },
    batch: { type: "string", default: "8" },
    "sign-every": { type: "string", default: "32" },
    curve: { type: "string", default: "secp384r1" },
    "value-bytes": { type: "string", default: "100" },
    warmup: { type: "string", default: "4000" },
  },
});
const here = path.dirname(fileURLToPath(import.meta.url));
const srcDir = path.resolve(values.src ?? path.join(here, "..", "src"));
const load = <T>(file: string): Promise<T> =>
  import(pathToFileURL(path.join(srcDir, file)).href) as Promise<T>;
const consensus = await load<ConsensusModule>("consensus/index.ts");
const crypto = await load<CryptoModule>("crypto/index.ts");
const ledger = await load<LedgerModule>("ledger/index.ts");
const { Replica } = await load<ReplicaModule>("node/replica.ts");
const { encodeEnvelope, decodeEnvelope } = await load<EnvelopeModule>("net/envelope.ts");
const { encodeFrame, FrameDecoder } = await load<FrameModule>("net/frame.ts");

const writesPerRound = Number(values.writes);
const rounds = Number(values.rounds);
const batch = Number(values.batch);
const signEvery = Number(values["sign-every"]);
const warmup = Number(values.warmup);
const curve = values.curve as "secp384r1" | "secp256r1";

const encoder = new TextEncoder();
let counter = 0;
const env = {
  now: () => Date.now(),
  randomBytes: (n: number) => {
    const bytes = new Uint8Array(n);
    new DataView(bytes.buffer).setUint32(0, ++counter);
    return bytes;
  },
};
const service = await crypto.createServiceIdentity({ now: new Date(), serial: Uint8Array.of(1), curve });
const nodeKey = crypto.generateEcKeyPair(curve);
const keys = {
  nodeId: crypto.nodeIdOf(nodeKey.publicKeyPem),
  nodeCertPem: await crypto.issueNodeCertificate({
    service,
    nodePublicKeyPem: nodeKey.publicKeyPem,
    now: new Date(),
    serial: Uint8Array.of(2),
  }),
  nodePrivateKey: crypto.p384PrivateKey(nodeKey.privateKeyPem),
  servicePrivateKey: crypto.p384PrivateKey(service.privateKeyPem),
  serviceKid: crypto.sha256(encoder.encode("kid")),
};
const secret = new Uint8Array(32).fill(7);
const ids = [keys.nodeId, "b".repeat(64), "c".repeat(64)];

/** In-memory storage: durable when `sync` runs (the harness's stand-in for one fdatasync). */
class MemoryStorage {
  private last = 0;
  private durable = 0;
  private readonly listeners: Array<(seqno: number) => void> = [];
  append(seqno: number): void {
    this.last = seqno;
  }
  truncate(after: number): Promise<void> {
    this.last = Math.min(this.last, after);
    this.durable = Math.min(this.durable, after);
    return Promise.resolve();
  }
  onDurable(listener: (seqno: number) => void): void {
    this.listeners.push(listener);
  }
  sync(): void {
    if (this.last <= this.durable) return;
    this.durable = this.last;
    for (const listener of this.listeners) listener(this.durable);
  }
}

interface Member {
  id: string;
  state: InstanceType<LedgerModule["LedgerState"]>;
  storage: MemoryStorage;
  replica: InstanceType<ReplicaModule["Replica"]>;
  decoder: InstanceType<FrameModule["FrameDecoder"]>;
  /** Frames on their way to this member, as one socket read would bring them. */
  inbox: Buffer[];
  deferred: Array<() => void>;
}

const members = new Map<string, Member>();
const silentLog = {
  warn: () => undefined,
  error: (fields: object, message: string) => console.error(message, fields),
};
let sink: { append: (seqno: number, frame: Uint8Array, isSignature: boolean, config?: string[]) => boolean } =
  {
    append: () => false,
  };

for (const id of ids) {
  const raft = new consensus.Raft({
    id,
    random: () => 0.5,
    log: { start: { seqno: 0, view: 0, config: [...ids].sort() }, entries: [] },
  });
  const storage = new MemoryStorage();
  const isPrimary = id === keys.nodeId;
  const state = new ledger.LedgerState(
    env,
    keys,
    new ledger.LedgerSecrets([{ version: 0, key: secret }]),
    isPrimary ? { append: (...args) => sink.append(...args) } : { append: () => false },
    0,
  );
  const deferred: Array<() => void> = [];
  const member: Member = {
    id,
    state,
    storage,
    decoder: new FrameDecoder(64 * 1024 * 1024),
    inbox: [],
    deferred,
    replica: new Replica(raft, state, storage, hooksFor(state), silentLog, {
      afterIo: (run) => deferred.push(run),
    }),
  };
  members.set(id, member);
}

/** A node's hooks, with nothing behind them but what the path needs. */
function hooksFor(state: InstanceType<LedgerModule["LedgerState"]>) {
  // Typed loosely: older trees have no `beforeBatch` (they sign from the ledger's batch write).
  const hooks: ConstructorParameters<ReplicaModule["Replica"]>[3] & { beforeBatch?: () => void } = {
    send: (to, message) =>
      members.get(to)!.inbox.push(encodeFrame(encodeEnvelope({ kind: "msg", body: message }))),
    saveHardState: () => undefined,
    roleChanged: (change) => {
      if (change.role === "primary") state.enterView(change.view);
    },
    committed: () => undefined,
    readReady: () => undefined,
    applied: () => undefined,
    rolledBack: () => undefined,
    sendSnapshot: () => undefined,
    // Trees with this hook sign at the start of the batch, as the node's scheduler does.
    beforeBatch: () => signIfDue(),
  };
  return hooks;
}
const primary = members.get(keys.nodeId)!;
const backups = ids.slice(1).map((id) => members.get(id)!);
sink = primary.replica;

/** One socket read's worth of frames into `member`, decoded and stepped as channels.ts does. */
function deliver(member: Member): boolean {
  if (member.inbox.length === 0) return false;
  const chunk = member.inbox.length === 1 ? member.inbox[0]! : Buffer.concat(member.inbox);
  member.inbox = [];
  for (const payload of member.decoder.push(chunk)) {
    const envelope = decodeEnvelope(payload);
    if (envelope.kind !== "msg") throw new Error(`unexpected ${envelope.kind}`);
    const from = (envelope.body as { from: string }).from;
    member.replica.step(from, envelope.body);
  }
  return true;
}

function runDeferred(member: Member): void {
  while (member.deferred.length > 0) member.deferred.shift()!();
}

const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const spent = { primary: 0, backups: 0 };
function onPrimary(work: () => void): void {
  const t = cpu();
  work();
  spent.primary += cpu() - t;
}
function onBackups(work: () => void): void {
  const t = cpu();
  work();
  spent.backups += cpu() - t;
}

// Election: the primary campaigns at once; messages flow until it leads.
primary.replica.raft.campaignNow();
primary.replica.process();
for (let i = 0; i < 20 && primary.replica.raft.role !== "primary"; i++) {
  for (const m of members.values()) deliver(m);
}
if (primary.replica.raft.role !== "primary") throw new Error("no primary elected");

// Seqno 1: the service and the primary, trusted, so backups accept its signatures.
const tx0 = primary.state.store.begin();
tx0
  .map(ledger.Tables.serviceInfo)
  .set(ledger.SINGLETON_KEY, ledger.jsonBytes({ cert: service.certPem, status: "Open" }));
// All three trusted (the configuration stays the three of them); only the primary signs.
for (const id of ids) {
  const idBytes = encoder.encode(id);
  tx0
    .map(ledger.Tables.nodesInfo)
    .set(idBytes, ledger.jsonBytes({ status: "Trusted", cert: keys.nodeCertPem, rpc_address: "x:1" }));
  tx0.map(ledger.Tables.nodesEndorsedCertificates).set(idBytes, encoder.encode(keys.nodeCertPem));
}
primary.state.commitTx(tx0);

const value = encoder.encode(
  JSON.stringify({ msg: "x".repeat(Math.max(0, Number(values["value-bytes"]) - 10)) }),
);
const key = new Uint8Array(8);
const keyView = new DataView(key.buffer);
let written = 0;
let sinceSignature = 0;

function signIfDue(): void {
  if (sinceSignature < signEvery) return;
  sinceSignature = 0;
  primary.state.emitSignature();
}

/** One event-loop turn's batch of writes, replicated and acknowledged until nothing moves. */
function step(): void {
  onPrimary(() => {
    for (let i = 0; i < batch; i++) {
      const tx = primary.state.store.begin();
      keyView.setBigUint64(0, BigInt(written++));
      tx.map("records").set(key.slice(), value);
      if (!primary.state.commitTx(tx).ok) throw new Error("commit failed");
    }
    sinceSignature += batch;
    // As on a node: the batch goes out after the turn's I/O; the signature at the start of it
    // (trees with `beforeBatch`) or from the ledger's batch write just after (older trees).
    runDeferred(primary);
    signIfDue();
    primary.storage.sync();
  });
  for (let moved = true; moved; ) {
    moved = false;
    // One clock reading around both backups: process.cpuUsage is a system call.
    onBackups(() => {
      for (const backup of backups) {
        if (deliver(backup)) moved = true;
        runDeferred(backup);
        backup.storage.sync();
      }
    });
    onPrimary(() => {
      if (deliver(primary)) moved = true;
      runDeferred(primary);
    });
  }
}

function run(writes: number): { primary_us: number; backup_us: number } {
  spent.primary = 0;
  spent.backups = 0;
  const start = written;
  while (written - start < writes) step();
  const n = written - start;
  // The node compacts consensus's log at snapshots; here at the commit point, to keep memory flat.
  for (const m of members.values()) {
    const at = Math.min(m.replica.raft.commitSeqno, m.state.commitSeqno);
    if (at > m.replica.raft.logStart.seqno) m.replica.raft.compact(at);
  }
  return {
    primary_us: Number((spent.primary / n).toFixed(2)),
    backup_us: Number((spent.backups / backups.length / n).toFixed(2)),
  };
}

run(warmup);
const results: Array<{ primary_us: number; backup_us: number }> = [];
for (let r = 0; r < rounds; r++) results.push(run(writesPerRound));
// Everything committed on the primary is on both backups' states, byte for byte in the tree.
const commit = primary.state.commitSeqno;
for (const backup of backups) {
  if (backup.state.lastSeqno < commit)
    throw new Error(
      `backup ${backup.id} is behind the commit point ${commit}: ${backup.state.lastSeqno}, ${backup.replica.refusal ?? JSON.stringify(backup.replica.raft.status())} ${JSON.stringify(primary.replica.raft.status())}`,
    );
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  JSON.stringify({
    src: srcDir,
    settings: { writesPerRound, rounds, batch, signEvery, curve },
    commit,
    primary_us_per_write: median(results.map((r) => r.primary_us)),
    backup_us_per_write: median(results.map((r) => r.backup_us)),
    rounds: results,
  }),
);
