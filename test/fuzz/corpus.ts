import { CHUNK_HEADER } from "../../src/ledger/chunks.ts";
import { LedgerSecrets, LedgerState, SINGLETON_KEY, Tables } from "../../src/ledger/index.ts";
import { IDENTITY, signingKeys } from "../sim/keys.ts";

/**
 * Valid samples to damage, made by the real ledger engine in this process: entry frames (public
 * and private), a chunk file, a snapshot file, JSON and COSE receipts. Fixed secret and clock,
 * so the corpus is the same on every run (but for the signatures' random nonces).
 */
export interface LedgerCorpus {
  frames: Uint8Array[];
  chunk: Uint8Array;
  secrets: LedgerSecrets;
  snapshot: Uint8Array;
  jsonReceipts: unknown[];
  coseReceipts: Uint8Array[];
  serviceCertPem: string;
}

const CLOCK = Date.UTC(2026, 0, 2);
const text = new TextEncoder();

let made: LedgerCorpus | undefined;

export function ledgerCorpus(): LedgerCorpus {
  if (made) return made;
  const frames: Uint8Array[] = [];
  const secrets = new LedgerSecrets([{ version: 0, key: Uint8Array.from({ length: 32 }, (_, i) => i * 7) }]);
  const state = new LedgerState(
    { now: () => CLOCK, randomBytes: (n) => new Uint8Array(n).fill(9) },
    signingKeys("n1"),
    secrets,
    {
      append: (_seqno, frame) => {
        frames.push(frame);
        return true;
      },
    },
    1,
  );
  const keys = signingKeys("n1");
  const genesis = state.store.begin();
  genesis
    .map(Tables.serviceInfo)
    .set(SINGLETON_KEY, text.encode(JSON.stringify({ cert: IDENTITY.serviceCertPem, status: "Open" })));
  genesis
    .map(Tables.nodesInfo)
    .set(
      text.encode(keys.nodeId),
      text.encode(JSON.stringify({ status: "Trusted", cert: keys.nodeCertPem })),
    );
  genesis.map(Tables.nodesEndorsedCertificates).set(text.encode(keys.nodeId), text.encode(keys.nodeCertPem));
  state.commitTx(genesis);
  for (let i = 0; i < 4; i++) {
    const tx = state.store.begin();
    tx.map("public:app.records").set(text.encode(`k${i}`), text.encode(`public value ${i}`));
    tx.map("app.secrets").set(text.encode(`k${i}`), text.encode(`private value ${i}`));
    if (i === 3) tx.map("public:app.records").delete(text.encode("k0"));
    state.commitTx(tx);
  }
  const signature = state.emitSignature();
  state.markDurable(signature);
  const jsonReceipts: unknown[] = [];
  const coseReceipts: Uint8Array[] = [];
  for (const seqno of [2, 4, 5]) {
    const receipt = state.receipt(1, seqno);
    if (receipt.status !== "ok") throw new Error(`no receipt for 1.${seqno}: ${receipt.status}`);
    jsonReceipts.push(JSON.parse(JSON.stringify(receipt.json)));
    coseReceipts.push(receipt.cose);
  }
  const chunk = new Uint8Array(Buffer.concat([CHUNK_HEADER, ...frames]));
  made = {
    frames,
    chunk,
    secrets,
    snapshot: state.encodeSnapshotAt(signature),
    jsonReceipts,
    coseReceipts,
    serviceCertPem: IDENTITY.serviceCertPem,
  };
  return made;
}
