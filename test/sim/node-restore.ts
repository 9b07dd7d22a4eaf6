import type { Entry, NodeId, SnapshotPoint } from "../../src/consensus/index.ts";
import {
  decodeEntry,
  decodeSnapshot,
  EntryType,
  type LedgerSecret,
  LedgerSecrets,
  type LedgerSink,
  LedgerState,
} from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import type { ReplicaLedger } from "../../src/node/replica.ts";
import type { Recovered, SimDisk } from "./disk.ts";
import type { EventQueue } from "./events.ts";
import { ledgerId, signingKeys, simIds } from "./keys.ts";
import type { Prng } from "./prng.ts";

// A simulated node started from its disk: the engine, Raft's log and the replica's view of the
// engine, as `SimNode.start` puts them together.

/** The engine's clock and randomness: the simulated clock and the run's PRNG. */
export function engineEnvironment(queue: EventQueue, prng: Prng, clockBase: number): Environment {
  return {
    now: () => clockBase + queue.now,
    randomBytes: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = prng.int(256);
      return out;
    },
  };
}

/**
 * The engine from the durable ledger and snapshot. A ledger that does not reach the snapshot (a
 * crash lost entries the snapshot covers) restarts after it, as Coco's ledger does when it
 * installs a snapshot; otherwise the whole ledger is replayed, receipts and all.
 */
export function restoreEngine(
  disk: SimDisk,
  recovered: Recovered,
  node: { id: NodeId; env: Environment; secret: LedgerSecret; sink: LedgerSink; serviceCertPem: string },
): LedgerState {
  const snapshot = recovered.snapshot;
  let { ledgerStart, entries } = recovered;
  if (snapshot && (entries.at(-1)?.seqno ?? ledgerStart - 1) < snapshot.point.seqno) {
    disk.writeSnapshot(snapshot, true);
    ledgerStart = snapshot.point.seqno + 1;
    entries = [];
  }
  const secrets = new LedgerSecrets([node.secret]);
  return LedgerState.restore({
    env: node.env,
    keys: signingKeys(node.id),
    secrets,
    sink: node.sink,
    entries: entries.map((e) => decodeEntry(e.data)),
    ...(snapshot ? { snapshot: decodeSnapshot(snapshot.bytes, secrets) } : {}),
    ledgerStart,
    serviceCertPem: node.serviceCertPem,
    commitSeqno: recovered.commitSeqno,
  });
}

/**
 * Raft's log from the disk: it starts at the snapshot (with the configuration the engine restored
 * there) or empty, and holds the ledger's entries after it, each with the configuration its
 * `nodes.info` write implies.
 */
export function raftLog(
  recovered: Recovered,
  state: LedgerState,
): { start: SnapshotPoint; entries: Entry[] } {
  const start: SnapshotPoint = recovered.snapshot
    ? { ...recovered.snapshot.point, config: simIds(state.startConfig) }
    : { seqno: 0, view: 0, config: [] };
  const entries: Entry[] = [];
  for (const entry of recovered.entries) {
    if (entry.seqno <= start.seqno) continue;
    const ledgerConfig = state.configAfter(entry.seqno);
    const config = ledgerConfig && simIds(ledgerConfig);
    entries.push({
      seqno: entry.seqno,
      view: entry.view,
      isSignature: decodeEntry(entry.data).type === EntryType.Signature,
      data: entry.data,
      ...(config ? { config } : {}),
    });
  }
  return { start, entries };
}

/**
 * The engine as the replica sees it. The replica names the primary it follows by consensus id
 * (a simulator name here); the engine's signing rules name nodes as the ledger does, by key hash.
 * With `skipRollback` (a planted bug) truncations do not roll it back.
 */
export function replicaLedger(state: LedgerState, skipRollback: boolean): ReplicaLedger {
  return {
    get view() {
      return state.view;
    },
    get lastSeqno() {
      return state.lastSeqno;
    },
    viewOf: (seqno) => state.viewOf(seqno),
    applyReplicated: (entry, source) =>
      state.applyReplicated(
        entry,
        source && { view: source.view, primary: source.primary === null ? null : ledgerId(source.primary) },
      ),
    rollback: (seqno) => (skipRollback ? undefined : state.rollback(seqno)),
    markCommitted: (commit) => state.markCommitted(commit),
  };
}
