/**
 * The ledger layer alone, in one process, with no network or disk: a primary's `LedgerState`
 * commits writes (encode, encrypt, Merkle append, a signature every `--sign-every`) and a backup's
 * applies its frames (decode, check, decrypt, apply, Merkle append, verify each signature). For
 * every `--every` transactions it prints the CPU per transaction of each side and the heap both
 * hold after a full GC, so a per-transaction cost or a memory that grows with the ledger shows up
 * without the noise of a shared machine's network benchmark.
 *
 *   node --expose-gc --import tsx bench/ledger-growth.ts [--transactions 1000000] [--every 100000]
 *        [--sign-every 25] [--keys 10000] [--curve secp384r1|secp256r1] [--no-backup]
 *        [--heap-snapshot FILE] [--receipt-window N|all]
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
  jsonBytes,
  LedgerSecrets,
  LedgerState,
  SINGLETON_KEY,
  type SigningKeys,
  Tables,
} from "../src/ledger/index.ts";

const { values } = parseArgs({
  options: {
    transactions: { type: "string", default: "1000000" },
    every: { type: "string", default: "100000" },
    "sign-every": { type: "string", default: "25" },
    keys: { type: "string", default: "10000" },
    curve: { type: "string", default: "secp384r1" },
    "no-backup": { type: "boolean", default: false },
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
  JSON.stringify({ curve, total, every, signEvery, keySpace, withBackup, heap_mb_start: heapMb() }),
);
const segments: Array<Record<string, number>> = [];
let primaryUs = 0;
let backupUs = 0;
for (let done = 0; done < total; ) {
  const t0 = cpuUs();
  for (let i = 0; i < signEvery && done < total; i++, done++) {
    const tx = primary.store.begin();
    view.setBigUint64(0, BigInt(done % keySpace));
    tx.map("records").set(key.slice(), value);
    primary.commitTx(tx);
  }
  const sig = primary.emitSignature();
  const t1 = cpuUs();
  primaryUs += t1 - t0;
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
      heap_mb: heapMb(),
      rss_mb: Number((process.memoryUsage().rss / 1048576).toFixed(1)),
    };
    segments.push(segment);
    console.error(JSON.stringify(segment));
    primaryUs = 0;
    backupUs = 0;
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
        keys: keySpace,
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
