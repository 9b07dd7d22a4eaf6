import type { KeyObject } from "node:crypto";
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  publicKeyDer,
  sha256,
} from "../../src/crypto/index.ts";
import type { SigningKeys } from "../../src/node/ledger-state.ts";

/**
 * The identities of every simulated service: one service key and certificate, and a node key with
 * a certificate the service endorsed for each node a run may have. Certificates are made with
 * WebCrypto, which is asynchronous and slow next to a simulated step, so the pool is made once
 * when this module loads and shared by every seed. Which keys sign changes nothing a run does:
 * only the bytes of signatures differ (ECDSA signing draws its own nonce; see docs/consensus.md).
 */
export interface SimIdentity {
  serviceCertPem: string;
  serviceKey: KeyObject;
  serviceKid: Uint8Array;
  /** Node keys by position: simulated node `n<i>` signs with `nodes[i - 1]`. */
  nodes: Array<{ nodeId: string; certPem: string; privateKey: KeyObject }>;
}

/** The most nodes one run may create (scenario.ts caps a run at 7). */
export const POOL_SIZE = 8;

// Fixed so that the certificates' fields (not their signatures) are the same on every run.
const ISSUED_AT = new Date("2025-01-01T00:00:00Z");

async function makeIdentity(): Promise<SimIdentity> {
  const service = await createServiceIdentity({
    now: ISSUED_AT,
    validityDays: 3650,
    serial: Uint8Array.of(1),
  });
  const nodes: SimIdentity["nodes"] = [];
  for (let i = 0; i < POOL_SIZE; i++) {
    const pair = generateP384KeyPair();
    const certPem = await issueNodeCertificate({
      service,
      nodePublicKeyPem: pair.publicKeyPem,
      subjectName: `Sim Node ${i + 1}`,
      now: ISSUED_AT,
      validityDays: 3650,
      serial: Uint8Array.of(2, i + 1),
    });
    nodes.push({
      nodeId: nodeIdOf(pair.publicKeyPem),
      certPem,
      privateKey: p384PrivateKey(pair.privateKeyPem),
    });
  }
  return {
    serviceCertPem: service.certPem,
    serviceKey: p384PrivateKey(service.privateKeyPem),
    serviceKid: sha256(publicKeyDer(service.certPem)),
    nodes,
  };
}

export const IDENTITY: SimIdentity = await makeIdentity();

/** The signing keys of simulated node `id` ("n3" signs with the third pool entry). */
export function signingKeys(id: string): SigningKeys {
  const index = Number(id.slice(1)) - 1;
  const node = IDENTITY.nodes[index];
  if (!/^n[1-9][0-9]*$/.test(id) || !node) {
    throw new Error(`no simulated identity for node ${id}: the pool holds n1..n${POOL_SIZE}`);
  }
  return {
    nodeId: node.nodeId,
    nodeCertPem: node.certPem,
    nodePrivateKey: node.privateKey,
    servicePrivateKey: IDENTITY.serviceKey,
    serviceKid: IDENTITY.serviceKid,
  };
}

/**
 * The ledger knows a node by its key's hash (its `nodes.info` key, the signer of its signatures),
 * as a real Coco node's Raft id is; the simulator names nodes `n<i>` for readable traces. These
 * translate between the two where consensus meets the engine.
 */
export function ledgerId(simId: string): string {
  return signingKeys(simId).nodeId;
}

const simIdsByLedgerId = new Map(IDENTITY.nodes.map((node, i) => [node.nodeId, `n${i + 1}`]));

/** A configuration the engine derived from `nodes.info`, in simulator ids, sorted. */
export function simIds(ledgerIds: readonly string[]): string[] {
  return ledgerIds
    .map((id) => {
      const simId = simIdsByLedgerId.get(id);
      if (!simId) throw new Error(`no simulated node has ledger id ${id}`);
      return simId;
    })
    .sort();
}
