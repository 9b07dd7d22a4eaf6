/**
 * A primary and a backup LedgerState in one process, for snapshot tests: the primary's frames
 * reach the backup only when `replicate` is called, and the service's first node (the primary)
 * is trusted at seqno 1, so the backup accepts its signatures.
 */
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  sha256,
} from "../../src/crypto/index.ts";
import {
  type DecodedEntry,
  decodeEntry,
  jsonBytes,
  LedgerSecrets,
  LedgerState,
  SINGLETON_KEY,
  type SigningKeys,
  Tables,
} from "../../src/ledger/index.ts";

const encoder = new TextEncoder();
export const SECRET = new Uint8Array(32).fill(9);

export interface Pair {
  primary: LedgerState;
  backup: LedgerState;
  serviceCertPem: string;
  /** Commits one write on the primary; returns its seqno. */
  write(map: string, key: string, value: string): number;
  /** Hands the primary's new frames to the backup; returns the decoded entries applied. */
  replicate(): DecodedEntry[];
  /** While false the primary's sink refuses entries (it lost its primacy). */
  accepting: boolean;
}

export async function snapshotPair(): Promise<Pair> {
  const service = await createServiceIdentity({ now: new Date(), serial: Uint8Array.of(1) });
  const node = generateP384KeyPair();
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
  let counter = 0;
  const env = {
    now: () => 1_800_000_000_000,
    randomBytes: (n: number) => {
      const bytes = new Uint8Array(n);
      new DataView(bytes.buffer).setUint32(0, ++counter);
      return bytes;
    },
  };
  let frames: Uint8Array[] = [];
  const pair = {} as Pair;
  pair.accepting = true;
  const primary = new LedgerState(
    env,
    keys,
    new LedgerSecrets([{ version: 0, key: SECRET }]),
    {
      append: (_seqno, frame) => {
        if (!pair.accepting) return false;
        frames.push(frame);
        return true;
      },
    },
    1,
  );
  const backup = new LedgerState(
    env,
    keys,
    new LedgerSecrets([{ version: 0, key: SECRET }]),
    { append: () => false },
    1,
  );
  const tx0 = primary.store.begin();
  tx0.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ cert: service.certPem, status: "Open" }));
  const id = encoder.encode(keys.nodeId);
  tx0
    .map(Tables.nodesInfo)
    .set(id, jsonBytes({ status: "Trusted", cert: keys.nodeCertPem, rpc_address: "x:1" }));
  tx0.map(Tables.nodesEndorsedCertificates).set(id, encoder.encode(keys.nodeCertPem));
  primary.commitTx(tx0);
  Object.assign(pair, {
    primary,
    backup,
    serviceCertPem: service.certPem,
    write(map: string, key: string, value: string): number {
      const tx = primary.store.begin();
      tx.map(map).set(encoder.encode(key), encoder.encode(value));
      const outcome = primary.commitTx(tx);
      if (!outcome.ok || outcome.seqno === null) throw new Error("write did not commit");
      return outcome.seqno;
    },
    replicate(): DecodedEntry[] {
      const entries = frames.map((f) => decodeEntry(f));
      frames = [];
      for (const entry of entries) backup.applyReplicated(entry);
      return entries;
    },
  });
  return pair;
}
