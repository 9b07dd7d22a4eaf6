import { parseJsonBytes } from "../ledger/index.ts";
import type { RpcNode } from "../rpc/index.ts";
import { type AttestationView, attestationProvider, attestationView } from "../tee/index.ts";
import { JoinError, NODE_ATTESTATIONS, parseJoinRequest } from "./join.ts";
import { readLedgerFrames } from "./ledger-read.ts";
import { COCO_VERSION, type CocoNode } from "./node.ts";
import { committedShareOf } from "./recovery-shares.ts";

/**
 * The node as the HTTPS layer sees it (src/rpc/port.ts): a narrow view over `CocoNode`, so rpc
 * depends on what it uses and nothing else.
 */
export function rpcPort(node: CocoNode): RpcNode {
  const { config } = node;
  const attestSelf = selfAttestation(node);
  return {
    nodeId: node.nodeId,
    log: node.log,
    settings: {
      maxBodyBytes: config.rpc.maxBodyBytes,
      forwarding: config.rpc.forwarding,
      forwardTimeoutMs: config.rpc.forwardTimeoutMs,
      maxConnectionsPerAddress: config.rpc.maxConnectionsPerAddress,
      idleTimeoutMs: config.rpc.idleTimeoutMs,
      commitWaitTimeoutMs: config.commitWaitTimeoutMs,
      platform: config.attestation.platform,
      version: COCO_VERSION,
    },
    // The store is replaced when a snapshot is installed: always read it through the state.
    get store() {
      return node.state.store;
    },
    now: () => node.env.now(),
    currentTxId: () => node.state.txIdOf(node.state.store.version),
    txIdOf: (seqno) => node.state.txIdOf(seqno),
    commitTxId: () => node.state.txIdOf(node.state.commitSeqno),
    get isPrimary() {
      return node.isPrimary;
    },
    get primaryId() {
      return node.primaryId;
    },
    rpcAddressOf: (id) => node.rpcAddressOf(id),
    commit: (tx, claimsDigest) => node.commit(tx, claimsDigest),
    waitForCommit: (seqno) => {
      node.wantCommit();
      return node.state.waitForCommit(seqno);
    },
    linearizableReadPoint: () => node.linearizableReadPoint(),
    txStatus: (view, seqno) => node.state.txStatus(view, seqno),
    receipt: (view, seqno) => node.state.loadReceipt(view, seqno),
    ledgerFrames: (from, to) => readLedgerFrames(node, from, to),
    requestNode: (to, message, timeoutMs, options) => node.requestNode(to, message, timeoutMs, options),
    peerLinks: () => node.peerLinks(),
    onNodeRequest: (handler) => node.onNodeRequest(handler),
    mayForward: (id) => node.servesAsPeer(id),
    status: () => ({
      retired: node.consensusStatus?.role === "retired",
      lastSignedSeqno: node.state.lastSignatureSeqno,
      startupSeqno: node.startupSeqno,
      view: node.state.view,
      certificateProblem: node.certificateProblem,
    }),
    nodes: () => node.nodes(),
    serviceInfo: () => node.serviceInfoOrNull(),
    consensus: () => node.consensusStatus,
    get nodeCertPem() {
      return node.identity.nodeCertPem;
    },
    get serviceCertPem() {
      return node.identity.serviceCertPem;
    },
    attestSelf,
    recordedAttestations: () =>
      new Map(node.state.readSmallMap(NODE_ATTESTATIONS).map(([id, bytes]) => [id, parseJsonBytes(bytes)])),
    join: async (body) => {
      try {
        const request = parseJoinRequest(body);
        const toPrimary = () => {
          const primary = node.nodes().find(([id]) => id === node.primaryId)?.[1];
          return {
            ok: false as const,
            status: 503,
            code: "NotPrimary",
            message: "join requests go to the primary",
            ...(primary ? { extra: { primary_rpc_address: primary.rpc_address } } : {}),
          };
        };
        // A node already recorded needs no write: any node can answer it from its committed
        // records. Only the primary may answer from a trust not committed yet (admission.ts,
        // settledSeqno), which it must when the joiner is part of the quorum that commits it:
        // a backup that has nothing settled to give sends the joiner to the primary.
        if (!node.isPrimary && !node.hasJoined(request)) return toPrimary();
        const answer = await node.admit(request);
        if (!node.isPrimary && answer.status === "Pending" && node.primaryId) return toPrimary();
        return { ok: true, body: answer };
      } catch (e) {
        if (e instanceof JoinError) return { ok: false, status: e.status, code: e.code, message: e.message };
        throw e;
      }
    },
    governance: node.governance,
    acceptRecoveryShare: (tx, memberId, payload) => node.acceptRecoveryShare(tx, memberId, payload),
    encryptedShareOf: (memberId) => committedShareOf(node.state, memberId),
  };
}

/**
 * This node's own attestation, made once and kept: on SNP a report binding the node's key (the
 * one its TLS certificate carries), so a client can check which code and hardware it talks to.
 * A failed attempt is not kept; the next request tries again. The node's in-process attestation
 * seams (tests) apply here as they did to its join.
 */
function selfAttestation(node: CocoNode): () => Promise<AttestationView> {
  const provider = attestationProvider(node.config.attestation, node.attestationSeams);
  let made: Promise<AttestationView> | undefined;
  return () => {
    made ??= provider.attest(node.identity.nodeCertPem).then(attestationView);
    made.catch(() => {
      made = undefined;
    });
    return made;
  };
}
