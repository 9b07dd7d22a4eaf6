/**
 * The ledger layer alone, in one process, with no network or disk: a primary's `LedgerState`
 * commits writes (encode, encrypt, Merkle append, a signature every `--sign-every`) and a backup's
 * applies its frames (decode, check, decrypt, apply, Merkle append, verify each signature). For
 * every `--every` transactions it prints the CPU per transaction of each side and the heap both
 * hold after a full GC, so a per-transaction cost or a memory that grows with the ledger shows up
 * without the noise of a shared machine's network benchmark.
 *
 *   node --expose-gc --import tsx bench/ledger-growth.ts [--transactions 1000000] [--every 100000]
 *        [--sign-every 25] [--keys 10000 | --unique] [--curve secp384r1|secp256r1] [--no-backup]
 *        [--snapshots [--snapshot-interval 10000]] [--heap-snapshot FILE] [--receipt-window N|all]
 *
 * `--unique` writes a new key every transaction, so the state grows with the ledger. `--snapshots`
 * also measures, at each signature, what snapshots cost a node per write (the CPU of encoding the
 * file and its digest, which every node does for every snapshot), outside the figures above:
 *   - `snap_before`: the session-6 rule (every `--snapshot-interval` transactions) and encoder
 *     (`encodeSnapshot` over `store.snapshot`, then `snapshotDigest`);
 *   - `snap_interval_new_encoder`: the same points, encoded by `SnapshotEncoder` (file and digest);
 *   - `snap_after`: the rule nodes follow now (at least max(interval, the keys at the previous
 *     snapshot) transactions apart, src/node/snapshots.ts) with `SnapshotEncoder`.
 * Where both encoders run at one point their order alternates, so neither always runs first.
 *
 * `--receipt-window` sets how many transactions before the commit point keep their receipt
 * proofs in memory (the node's `ledger.receiptWindow`, 10,000 by default); `all` keeps every
 * proof, as before session 7.
 */
import { parseArgs } from "node:util";
import { writeHeapSnapshot } from "node:v8";
import {
  createServiceIdentity,
  generateEcKeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  type ServiceCurve,
  sha256,
} from "../src/crypto/index.ts";
import {
  decodeEntry,
  encodeSnapshot,
  encodeSnapshotFrom,
  jsonBytes,
  LedgerSecrets,
  LedgerState,
  SINGLETON_KEY,
  type SigningKeys,
  snapshotDigest,
  Tables,
} from "../src/ledger/index.ts";
import { SNAPSHOT_TX_PER_KEY } from "../src/node/snapshots.ts";

const { values } = parseArgs({
  options: {
    transactions: { type: "string", default: "1000000" },
    every: { type: "string", default: "100000" },
    "sign-every": { type: "string", default: "25" },
    keys: { type: "string", default: "10000" },
    curve: { type: "string", default: "secp384r1" },
    "no-backup": { type: "boolean", default: false },
    unique: { type: "boolean", default: false },
    snapshots: { type: "boolean", default: false },
    "snapshot-interval": { type: "string", default: "10000" },
    "heap-snapshot": { type: "string" },
    "receipt-window": { type: "string" },
  },
});
const receiptWindow =
  values["receipt-window"] === undefined
    ? undefined
    : values["receipt-window"] === "all"
      ? Number.POSITIVE_INFINITY
      : Number(values["receipt-window"]);
const total = Number(values.transactions);
const every = Number(values.every);
const signEvery = Number(values["sign-every"]);
const keySpace = Number(values.keys);
const curve = values.curve as ServiceCurve;
const withBackup = !values["no-backup"];
const unique = values.unique;
const measureSnapshots = values.snapshots;
const snapshotInterval = Number(values["snapshot-interval"]);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("run with node --expose-gc --import tsx bench/ledger-growth.ts");
  process.exit(2);
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
const service = await createServiceIdentity({ now: new Date(), serial: Uint8Array.of(1), curve });
const node = generateEcKeyPair(curve);
const keys: SigningKeys = {
  nodeId: nodeIdOf(node.publicKeyPem),
  nodeCertPem: await issueNodeCertificate({
    service,
    nodePublicKeyPem: node.publicKeyPem,
    now: new Date(),
    serial: Uint8Array.of(2),
  }),
  nodePrivateKey: p384PrivateKey(node.privateKeyPem),
  servicePrivateKey: p384PrivateKey(service.privateKeyPem),
  serviceKid: sha256(encoder.encode("kid")),
};
const secret = new Uint8Array(32).fill(7);
let pending: Uint8Array[] = [];
const primary = new LedgerState(
  env,
  keys,
  new LedgerSecrets([{ version: 0, key: secret }]),
  {
    append: (_seqno, frame) => {
      if (withBackup) pending.push(frame);
      return true;
    },
  },
  1,
);
const backup = new LedgerState(
  env,
  keys,
  new LedgerSecrets([{ version: 0, key: secret }]),
  { append: () => false },
  1,
);
if (receiptWindow !== undefined) {
  primary.receiptWindow = receiptWindow;
  backup.receiptWindow = receiptWindow;
}
// Seqno 1: the service and this node, trusted, so its signatures are accepted by the backup.
const tx0 = primary.store.begin();
tx0.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ cert: service.certPem, status: "Open" }));
const id = encoder.encode(keys.nodeId);
tx0
  .map(Tables.nodesInfo)
  .set(id, jsonBytes({ status: "Trusted", cert: keys.nodeCertPem, rpc_address: "x:1" }));
tx0.map(Tables.nodesEndorsedCertificates).set(id, encoder.encode(keys.nodeCertPem));
primary.commitTx(tx0);

const value = encoder.encode(JSON.stringify({ msg: "x".repeat(100) }));
const key = new Uint8Array(8);
const view = new DataView(key.buffer);
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
/** JS heap plus the ArrayBuffers' memory outside it, after a full GC. */
const heapMb = () => {
  gc();
  const m = process.memoryUsage();
  return Number(((m.heapUsed + m.arrayBuffers) / 1048576).toFixed(1));
};
console.error(
  JSON.stringify({
    curve,
    total,
    every,
    signEvery,
    keySpace: unique ? "unique" : keySpace,
    withBackup,
    snapshots: measureSnapshots ? snapshotInterval : false,
    heap_mb_start: heapMb(),
  }),
);

/** Snapshot CPU (µs) in this segment under each rule/encoder, and how many were taken. */
const snap = { before: 0, intervalNew: 0, after: 0, taken: 0, takenAfter: 0 };
let lastBefore = 0;
let lastAfter = 0;
let keysAtAfter = 0;
let alternate = false;
const oldEncode = (seqno: number) => {
  const source = primary.snapshotSourceAt(seqno);
  const bytes = encodeSnapshot(primary.store.snapshot(seqno), source.view, primary.secrets, source.anchor);
  return snapshotDigest(bytes);
};
const newEncode = (seqno: number) =>
  encodeSnapshotFrom(primary.snapshotSourceAt(seqno), primary.secrets).digest;
const timed = (f: () => Uint8Array): [number, Uint8Array] => {
  const t0 = cpuUs();
  const digest = f();
  return [cpuUs() - t0, digest];
};
/** At the signature `seqno` (the newest entry): the snapshots each rule takes there. */
function snapshotsAt(seqno: number): void {
  const dueBefore = seqno - lastBefore >= snapshotInterval;
  const dueAfter = seqno - lastAfter >= Math.max(snapshotInterval, SNAPSHOT_TX_PER_KEY * keysAtAfter);
  if (!dueBefore && !dueAfter) return;
  let fresh: number | undefined;
  if (dueBefore) {
    alternate = !alternate;
    const runs = alternate ? [oldEncode, newEncode] : [newEncode, oldEncode];
    const [t1, d1] = timed(() => runs[0]!(seqno));
    const [t2, d2] = timed(() => runs[1]!(seqno));
    if (Buffer.compare(d1, d2) !== 0) throw new Error(`the encoders disagree at ${seqno}`);
    const [tOld, tNew] = alternate ? [t1, t2] : [t2, t1];
    snap.before += tOld;
    snap.intervalNew += tNew;
    snap.taken++;
    lastBefore = seqno;
    fresh = tNew;
  }
  if (dueAfter) {
    snap.after += fresh ?? timed(() => newEncode(seqno))[0];
    snap.takenAfter++;
    lastAfter = seqno;
    keysAtAfter = primary.store.versionAt(seqno).keyCount;
  }
}
const segments: Array<Record<string, number>> = [];
let primaryUs = 0;
let backupUs = 0;
for (let done = 0; done < total; ) {
  const t0 = cpuUs();
  for (let i = 0; i < signEvery && done < total; i++, done++) {
    const tx = primary.store.begin();
    view.setBigUint64(0, BigInt(unique ? done : done % keySpace));
    tx.map("records").set(key.slice(), value);
    primary.commitTx(tx);
  }
  const sig = primary.emitSignature();
  let t1 = cpuUs();
  primaryUs += t1 - t0;
  if (measureSnapshots) {
    snapshotsAt(sig);
    t1 = cpuUs();
  }
  if (withBackup) {
    for (const frame of pending) backup.applyReplicated(decodeEntry(frame));
    pending = [];
    backup.markCommitted(sig);
    backupUs += cpuUs() - t1;
  }
  primary.markCommitted(sig);
  if (done % every === 0 || done === total) {
    const n = segments.length === 0 ? done : done - segments.at(-1)!.transactions!;
    const segment = {
      transactions: done,
      primary_us_per_tx: Number((primaryUs / n).toFixed(1)),
      backup_us_per_tx: Number((backupUs / n).toFixed(1)),
      ...(measureSnapshots
        ? {
            keys: primary.store.versionAt().keyCount,
            snapshots_before: snap.taken,
            snapshots_after: snap.takenAfter,
            snap_before_us_per_tx: Number((snap.before / n).toFixed(2)),
            snap_interval_new_encoder_us_per_tx: Number((snap.intervalNew / n).toFixed(2)),
            snap_after_us_per_tx: Number((snap.after / n).toFixed(2)),
          }
        : {}),
      heap_mb: heapMb(),
      rss_mb: Number((process.memoryUsage().rss / 1048576).toFixed(1)),
    };
    segments.push(segment);
    console.error(JSON.stringify(segment));
    primaryUs = 0;
    backupUs = 0;
    Object.assign(snap, { before: 0, intervalNew: 0, after: 0, taken: 0, takenAfter: 0 });
  }
}
const first = segments[0]!;
const last = segments.at(-1)!;
console.log(
  JSON.stringify(
    {
      benchmark: "ledger layer in one process: primary commits, backup applies",
      settings: {
        curve,
        transactions: total,
        every,
        sign_every: signEvery,
        keys: unique ? "unique" : keySpace,
        snapshot_interval: measureSnapshots ? snapshotInterval : undefined,
        backup: withBackup,
        receipt_window: Number.isFinite(primary.receiptWindow) ? primary.receiptWindow : "all",
      },
      heap_mb_per_100k_tx: Number(
        (((last.heap_mb! - first.heap_mb!) / (last.transactions! - first.transactions!)) * 100_000).toFixed(
          2,
        ),
      ),
      segments,
    },
    null,
    2,
  ),
);
// For finding what holds the memory (Chrome DevTools reads the file). The states stay live until here.
if (values["heap-snapshot"]) writeHeapSnapshot(values["heap-snapshot"]);
void [primary, backup];
