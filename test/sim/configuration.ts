import type { Entry } from "../../src/consensus/index.ts";
import type { Tx } from "../../src/kv/index.ts";
import {
  type LedgerSecret,
  LedgerSecrets,
  LedgerState,
  SINGLETON_KEY,
  Tables,
} from "../../src/ledger/index.ts";
import { IDENTITY, ledgerId, signingKeys, simIds } from "./keys.ts";

// The service's configuration as governance writes it: `nodes.info` records that trust or retire
// nodes (the engine derives consensus's configuration from them), and the genesis transaction.

const encoder = new TextEncoder();

/** Trusts a node: its `nodes.info` record and its endorsed certificate. */
export function trustNode(tx: Tx, id: string): void {
  const record = { status: "Trusted", cert: signingKeys(id).nodeCertPem, rpc_address: id };
  tx.map(Tables.nodesInfo).set(encoder.encode(ledgerId(id)), encoder.encode(JSON.stringify(record)));
  tx.map(Tables.nodesEndorsedCertificates).set(encoder.encode(ledgerId(id)), encoder.encode(record.cert));
}

/** Retires a node: it leaves the configuration. */
export function retireNode(tx: Tx, id: string): void {
  const record = { status: "Retired", cert: signingKeys(id).nodeCertPem, rpc_address: id };
  tx.map(Tables.nodesInfo).set(encoder.encode(ledgerId(id)), encoder.encode(JSON.stringify(record)));
}

/**
 * Seqno 1 of every initial member's ledger: the service's first transaction, which trusts the
 * initial nodes (so it carries the first configuration). Made by the real engine.
 */
export function genesisEntry(secret: LedgerSecret, ids: string[], clockBase: number): Entry {
  let made: Entry | undefined;
  const state = new LedgerState(
    { now: () => clockBase, randomBytes: (n) => new Uint8Array(n) },
    signingKeys(ids[0]!),
    new LedgerSecrets([secret]),
    {
      append: (seqno, data, isSignature, config) => {
        made = { seqno, view: 0, isSignature, data, ...(config ? { config: simIds(config) } : {}) };
        return true;
      },
    },
    0,
  );
  const tx = state.store.begin();
  const json = (value: unknown) => encoder.encode(JSON.stringify(value));
  tx.map(Tables.serviceInfo).set(SINGLETON_KEY, json({ cert: IDENTITY.serviceCertPem, status: "Open" }));
  for (const id of ids) trustNode(tx, id);
  state.commitTx(tx);
  if (!made?.config) throw new Error("the genesis transaction carries no configuration");
  return made;
}
