/**
 * The replicated write path in one process, without TLS, disk or timers: a primary and two
 * backups, each a real `LedgerState` driven by a real `Raft` through the node's `Replica`, with
 * every message going through the node-to-node codec (envelope, length-prefixed frame, the
 * frame decoder) as it does on a socket. The primary commits `--batch` writes per event-loop
 * turn and a signature every `--sign-every` writes (as the paced scheduler does under load);
 * storage is in memory and reports each batch durable at once ("fsync" costs nothing here).
 *
 * It prints the CPU time (process.cpuUsage: user + system, so GC threads count) per committed
 * write spent on the primary's side (commit without execution, encode, encrypt, replication
 * framing, acknowledgements, commit) and on each backup's side (frame and message decode,
 * consensus, entry decode, decrypt, apply, commit evidence, Merkle, signature checks,
 * acknowledgements).
 *
 *   node --expose-gc --import tsx bench/replication-path.ts [--src DIR] [--base DIR] [--pairs 12] [--segment 2000]
 *        [--batch 8] [--sign-every 32] [--curve secp384r1|secp256r1] [--value-bytes 100]
 *
 * `--src` is the `src` directory to measure (default: this tree's). With `--base DIR` (another
 * tree's `src`, e.g. from `git archive`), both run in this one process as separate services,
 * alternating `--segment` writes each for `--pairs` pairs, so the load on a shared machine falls
 * on both alike; it prints each side's median and the per-pair ratios (change / base). The
 * harness uses only interfaces older trees have too.
 *
 * Profiling: run it under `node --cpu-prof --cpu-prof-interval 100`; every sample of a backup's
 * work lies under the function `backupTurn`, so the backups' costs can be told from the primary's.
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
    base: { type: "string" },
    pairs: { type: "string", default: "12" },
    segment: { type: "string", default: "2000" },
    batch: { type: "string", default: "8" },
    "sign-every": { type: "string", default: "32" },
    curve: { type: "string", default: "secp384r1" },
    "value-bytes": { type: "string", default: "100" },
    warmup: { type: "string", default: "4000" },
  },
});
const here = path.dirname(fileURLToPath(import.meta.url));
const pairs = Number(values.pairs);
const segment = Number(values.segment);
const batch = Number(values.batch);
const signEvery = Number(values["sign-every"]);
const warmup = Number(values.warmup);
const curve = values.curve as "secp384r1" | "secp256r1";
const valueBytes = Number(values["value-bytes"]);

const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

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

interface Segment {
  primary_us: number;
  backup_us: number;
}

/** A three-node service built from the `src` tree at `srcDir`; `run(n)` commits n writes. */
async function service(srcDir: string): Promise<{ run: (writes: number) => Segment }> {
  const load = <T>(file: string): Promise<T> =>
    import(pathToFileURL(path.join(srcDir, file)).href) as Promise<T>;
  const consensus = await load<ConsensusModule>("consensus/index.ts");
  const crypto = await load<CryptoModule>("crypto/index.ts");
  const ledger = await load<LedgerModule>("ledger/index.ts");
  const { Replica } = await load<ReplicaModule>("node/replica.ts");
  const { encodeEnvelope, decodeEnvelope } = await load<EnvelopeModule>("net/envelope.ts");
  const { encodeFrame, FrameDecoder } = await load<FrameModule>("net/frame.ts");
  type State = InstanceType<LedgerModule["LedgerState"]>;
  type Hooks = ConstructorParameters<ReplicaModule["Replica"]>[3];
  interface Member {
    id: string;
    state: State;
    storage: MemoryStorage;
    replica: InstanceType<ReplicaModule["Replica"]>;
    decoder: InstanceType<FrameModule["FrameDecoder"]>;
    /** Frames on their way to this member, as one socket read would bring them. */
    inbox: Buffer[];
    deferred: Array<() => void>;
  }

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
  const identity = await crypto.createServiceIdentity({ now: new Date(), serial: Uint8Array.of(1), curve });
  const nodeKey = crypto.generateEcKeyPair(curve);
  const keys = {
    nodeId: crypto.nodeIdOf(nodeKey.publicKeyPem),
    nodeCertPem: await crypto.issueNodeCertificate({
      service: identity,
      nodePublicKeyPem: nodeKey.publicKeyPem,
      now: new Date(),
      serial: Uint8Array.of(2),
    }),
    nodePrivateKey: crypto.p384PrivateKey(nodeKey.privateKeyPem),
    servicePrivateKey: crypto.p384PrivateKey(identity.privateKeyPem),
    serviceKid: crypto.sha256(encoder.encode("kid")),
  };
  const secret = new Uint8Array(32).fill(7);
  const ids = [keys.nodeId, "b".repeat(64), "c".repeat(64)];
  const members = new Map<string, Member>();
  const silentLog = {
    warn: () => undefined,
    error: (fields: object, message: string) => console.error(message, fields),
  };
  let written = 0;
  let sinceSignature = 0;
  let primary: Member | undefined;
  const signIfDue = (): void => {
    if (sinceSignature < signEvery || !primary) return;
    sinceSignature = 0;
    primary.state.emitSignature();
  };

  for (const id of ids) {
    const raft = new consensus.Raft({
      id,
      random: () => 0.5,
      log: { start: { seqno: 0, view: 0, config: [...ids].sort() }, entries: [] },
    });
    const storage = new MemoryStorage();
    const state: State = new ledger.LedgerState(
      env,
      keys,
      new ledger.LedgerSecrets([{ version: 0, key: secret }]),
      id === keys.nodeId
        ? { append: (...args) => members.get(id)!.replica.append(...args) }
        : { append: () => false },
      0,
    );
    // Typed loosely: older trees have no `beforeBatch` (they sign from the ledger's batch write).
    const hooks: Hooks & { beforeBatch?: () => void } = {
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
    const deferred: Array<() => void> = [];
    members.set(id, {
      id,
      state,
      storage,
      decoder: new FrameDecoder(64 * 1024 * 1024),
      inbox: [],
      deferred,
      replica: new Replica(raft, state, storage, hooks, silentLog, { afterIo: (run) => deferred.push(run) }),
    });
  }
  primary = members.get(keys.nodeId)!;
  const leader = primary;
  const backups = ids.slice(1).map((id) => members.get(id)!);

  /** One socket read's worth of frames into `member`, decoded and stepped as channels.ts does. */
  const deliver = (member: Member): boolean => {
    if (member.inbox.length === 0) return false;
    const chunk = member.inbox.length === 1 ? member.inbox[0]! : Buffer.concat(member.inbox);
    member.inbox = [];
    for (const payload of member.decoder.push(chunk)) {
      const envelope = decodeEnvelope(payload);
      if (envelope.kind !== "msg") throw new Error(`unexpected ${envelope.kind}`);
      member.replica.step((envelope.body as { from: string }).from, envelope.body);
    }
    return true;
  };
  const runDeferred = (member: Member): void => {
    while (member.deferred.length > 0) member.deferred.shift()!();
  };
  /** A backup's event-loop turn: one socket read, its deferred work, its durable write (named for profiles). */
  // A declaration, not an arrow: the transpiled arrow has no name in a CPU profile.
  function backupTurn(backup: Member): boolean {
    const moved = deliver(backup);
    runDeferred(backup);
    backup.storage.sync();
    return moved;
  }

  // Election: the primary campaigns at once; messages flow until it leads.
  leader.replica.raft.campaignNow();
  leader.replica.process();
  for (let i = 0; i < 20 && leader.replica.raft.role !== "primary"; i++) {
    for (const m of members.values()) deliver(m);
  }
  if (leader.replica.raft.role !== "primary") throw new Error("no primary elected");

  // Seqno 1: the service and all three nodes trusted (the configuration stays the three of
  // them); only the primary signs.
  const tx0 = leader.state.store.begin();
  tx0
    .map(ledger.Tables.serviceInfo)
    .set(ledger.SINGLETON_KEY, ledger.jsonBytes({ cert: identity.certPem, status: "Open" }));
  for (const id of ids) {
    const idBytes = encoder.encode(id);
    tx0
      .map(ledger.Tables.nodesInfo)
      .set(idBytes, ledger.jsonBytes({ status: "Trusted", cert: keys.nodeCertPem, rpc_address: "x:1" }));
    tx0.map(ledger.Tables.nodesEndorsedCertificates).set(idBytes, encoder.encode(keys.nodeCertPem));
  }
  leader.state.commitTx(tx0);

  const value = encoder.encode(JSON.stringify({ msg: "x".repeat(Math.max(0, valueBytes - 10)) }));
  const key = new Uint8Array(8);
  const keyView = new DataView(key.buffer);
  const spent = { primary: 0, backups: 0 };

  /** One event-loop turn's batch of writes, replicated and acknowledged until nothing moves. */
  const step = (): void => {
    let t = cpu();
    for (let i = 0; i < batch; i++) {
      const tx = leader.state.store.begin();
      keyView.setBigUint64(0, BigInt(written++));
      tx.map("records").set(key.slice(), value);
      if (!leader.state.commitTx(tx).ok) throw new Error("commit failed");
    }
    sinceSignature += batch;
    // As on a node: the batch goes out after the turn's I/O; the signature at the start of it
    // (trees with `beforeBatch`) or from the ledger's batch write just after (older trees).
    runDeferred(leader);
    signIfDue();
    leader.storage.sync();
    for (let moved = true; moved; ) {
      moved = false;
      // One clock reading per side and pass: process.cpuUsage is a system call.
      const t1 = cpu();
      spent.primary += t1 - t;
      for (const backup of backups) if (backupTurn(backup)) moved = true;
      t = cpu();
      spent.backups += t - t1;
      if (deliver(leader)) moved = true;
      runDeferred(leader);
    }
    spent.primary += cpu() - t;
  };

  const run = (writes: number): Segment => {
    // Each segment starts from a collected heap, so it pays for its own garbage (and not for
    // the other service's, in an A/B): run with node --expose-gc.
    (globalThis as { gc?: () => void }).gc?.();
    spent.primary = 0;
    spent.backups = 0;
    const start = written;
    while (written - start < writes) step();
    const n = written - start;
    // Everything the primary committed is on both backups.
    for (const backup of backups) {
      if (backup.state.lastSeqno < leader.state.commitSeqno) {
        throw new Error(`backup ${backup.id} is behind the commit point ${leader.state.commitSeqno}`);
      }
    }
    // The node compacts consensus's log at snapshots; here at the commit point, to keep memory flat.
    for (const m of members.values()) {
      const at = Math.min(m.replica.raft.commitSeqno, m.state.commitSeqno);
      if (at > m.replica.raft.logStart.seqno) m.replica.raft.compact(at);
    }
    return {
      primary_us: Number((spent.primary / n).toFixed(2)),
      backup_us: Number((spent.backups / backups.length / n).toFixed(2)),
    };
  };
  return { run };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[]) => [Math.min(...xs), Math.max(...xs)];
const change = await service(path.resolve(values.src ?? path.join(here, "..", "src")));
const base = values.base ? await service(path.resolve(values.base)) : undefined;
change.run(warmup);
base?.run(warmup);
const runs: { change: Segment[]; base: Segment[] } = { change: [], base: [] };
for (let p = 0; p < pairs; p++) {
  // Alternate which goes first, so neither always runs right after the other's garbage.
  const order = p % 2 === 0 ? (["change", "base"] as const) : (["base", "change"] as const);
  for (const side of order) {
    const s = side === "change" ? change : base;
    if (s) runs[side].push(s.run(segment));
  }
}
const summary = (segments: Segment[]) => ({
  primary_us_per_write: median(segments.map((s) => s.primary_us)),
  primary_spread: spread(segments.map((s) => s.primary_us)),
  backup_us_per_write: median(segments.map((s) => s.backup_us)),
  backup_spread: spread(segments.map((s) => s.backup_us)),
});
const ratios = (side: "primary_us" | "backup_us") =>
  runs.change.map((c, i) => Number((c[side] / runs.base[i]![side]).toFixed(3)));
console.log(
  JSON.stringify(
    {
      settings: { pairs, segment, batch, signEvery, curve, valueBytes, src: values.src, base: values.base },
      change: summary(runs.change),
      ...(base
        ? {
            base: summary(runs.base),
            ratio_primary: { median: median(ratios("primary_us")), pairs: ratios("primary_us") },
            ratio_backup: { median: median(ratios("backup_us")), pairs: ratios("backup_us") },
          }
        : {}),
    },
    null,
    1,
  ),
);
