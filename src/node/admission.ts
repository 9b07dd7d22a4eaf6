import type { Logger } from "pino";
import type { RaftStatus } from "../consensus/index.ts";
import { issueNodeCertificate } from "../crypto/index.ts";
import type { Store, Tx } from "../kv/index.ts";
import { fromUtf8, jsonBytes, type NodeInfo, parseJsonBytes, Tables, utf8 } from "../ledger/index.ts";
import type { AttestationPlatform } from "../tee/index.ts";
import type { Environment } from "./env.ts";
import { hostAltNames, type NodeIdentity } from "./identity.ts";
import {
  checkJoinProof,
  type JoinPeer,
  type JoinRequest,
  type JoinResponse,
  type JoinVerifier,
  joinerNodeId,
  NODE_ATTESTATIONS,
  readJoinPolicy,
  wrapSecrets,
} from "./join.ts";

/** What admitting a joiner needs from the node (the primary, or any node for a recorded joiner). */
export interface AdmissionHost {
  log: Logger;
  env: Environment;
  identity: NodeIdentity;
  platform: AttestationPlatform;
  /** The virtual platform's development option (see NodeConfig.trustJoinersWhileOpening). */
  trustJoinersWhileOpening: boolean;
  verifier: JoinVerifier;
  /** `nodes.info` as this node's store has it now, including what is not committed yet. */
  nodes(): Array<[string, NodeInfo]>;
  serviceStatus(): string;
  readSmallMap(map: string): Array<[string, Uint8Array]>;
  /**
   * The node records as of the newest version a Trusted answer to joiner `joinerId` may come
   * from (see settledSeqno), or undefined if this node cannot read that version.
   */
  settled(joinerId: string): NodeRecords | undefined;
  begin(): Tx;
  mustCommit(tx: Tx): void;
}

/** The loud start-up warning of the development option; tests look for it. */
export const INSTANT_TRUST_WARNING =
  "INSECURE: attestation.virtual.trustJoinersWhileOpening is set: while the service is Opening, any node that presents a virtual attestation (which anyone can forge) is trusted at once and receives the service key and the ledger secrets. Development only; never use it for a service that will hold real data.";

/** True when `nodes.info` already records the node making this join request. */
export function hasJoined(host: Pick<AdmissionHost, "nodes">, request: JoinRequest): boolean {
  const nodeId = joinerNodeId(request);
  return host.nodes().some(([id]) => id === nodeId);
}

/**
 * Admits a joining node: checks that the node key signed the encryption key and that the
 * attestation satisfies the join policy, and records a new joiner as Pending. Nothing is issued
 * then: the joiner's certificate is endorsed when the members vote `transition_node_to_trusted`
 * (from the certificate signing request recorded here), and only a Trusted joiner's answer
 * carries it, the nodes to connect to and the service's secrets wrapped to its encryption key.
 * A Pending answer names the node and its status, nothing else. The development option
 * `trustJoinersWhileOpening` (virtual platform only) trusts a joiner at once while Opening.
 */
export async function admit(host: AdmissionHost, request: JoinRequest): Promise<JoinResponse> {
  checkJoinProof(request);
  const attestation = host.verifier.check(
    request,
    readJoinPolicy((map) => host.readSmallMap(map)),
    { now: host.env.now(), platform: host.platform },
  );
  const nodeId = joinerNodeId(request);
  let known = host.nodes().find(([id]) => id === nodeId)?.[1];
  if (!known) {
    const instant =
      host.trustJoinersWhileOpening && host.platform === "virtual" && host.serviceStatus() === "Opening";
    const info: NodeInfo = {
      status: instant ? "Trusted" : "Pending",
      rpc_address: request.rpc_address,
      node_address: request.node_address,
      certificate_signing_request: request.certificate_signing_request,
    };
    const tx = host.begin();
    if (instant) {
      info.cert = await issueNodeCertificate({
        service: { certPem: host.identity.serviceCertPem, privateKeyPem: host.identity.servicePrivateKeyPem },
        nodePublicKeyPem: request.node_public_key,
        altNames: hostAltNames(request.rpc_address.slice(0, request.rpc_address.lastIndexOf(":"))),
        now: new Date(host.env.now()),
        serial: host.env.randomBytes(16),
      });
      tx.map(Tables.nodesEndorsedCertificates).set(utf8(nodeId), utf8(info.cert));
    }
    tx.map(Tables.nodesInfo).set(utf8(nodeId), jsonBytes(info));
    tx.map(NODE_ATTESTATIONS).set(utf8(nodeId), jsonBytes(attestation));
    host.mustCommit(tx);
    known = info;
    const logged = {
      nodeId,
      status: info.status,
      rpc: request.rpc_address,
      platform: attestation.format,
      measurement: attestation.measurement,
    };
    if (instant) host.log.warn(logged, "a node joined and was trusted at once (trustJoinersWhileOpening)");
    else host.log.info(logged, "a node joined; it waits, Pending, until the members vote to trust it");
  }
  const base = { node_id: nodeId, service_certificate: host.identity.serviceCertPem };
  // The answer comes from settled records only (see settledSeqno): a trust that may yet be
  // rolled back hands out nothing, or the joiner would hold secrets no vote gave it and a
  // certificate its peers will refuse once the trust is recorded again with another one.
  const settled = host.settled(nodeId);
  const decided = settled?.nodes().find(([id]) => id === nodeId)?.[1];
  if (!settled || !decided || decided.status !== known.status) return { ...base, status: "Pending" };
  if (decided.status !== "Trusted") return { ...base, status: decided.status };
  const certificate = settled.endorsedCertificate(nodeId);
  // Trusted by a constitution that endorsed no certificate (yet): nothing to hand over.
  if (!certificate) return { ...base, status: "Trusted" };
  return {
    ...base,
    status: "Trusted",
    node_certificate: certificate,
    peers: peersFor(settled, nodeId),
    wrapped_secrets: wrapSecrets(
      {
        service_private_key: host.identity.servicePrivateKeyPem,
        ledger_secrets: host.identity.ledgerSecrets,
      },
      request.encryption_public_key,
      (n) => host.env.randomBytes(n),
    ),
  };
}

/** Node records read at one version of the store. */
export interface NodeRecords {
  nodes(): Array<[string, NodeInfo]>;
  endorsedCertificate(nodeId: string): string | undefined;
}

/** `nodes.info` and `nodes.endorsed_certificates` as `store` had them at `version`. */
export function nodeRecordsAt(store: Store, version: number): NodeRecords {
  const at = store.versionAt(version);
  const index = at.maps.findIndex((m) => m.name === Tables.nodesInfo);
  const nodes: Array<[string, NodeInfo]> = [];
  if (index >= 0) {
    const cursor = at.cursor(index);
    while (cursor.next()) {
      nodes.push([
        fromUtf8(Buffer.from(cursor.key, "latin1")),
        parseJsonBytes<NodeInfo>(Buffer.from(cursor.value, "latin1")),
      ]);
    }
  }
  return {
    nodes: () => nodes,
    endorsedCertificate: (id) => readEndorsedCertificate((map, key) => store.readAt(version, map, key), id),
  };
}

/**
 * The newest seqno whose records a joiner may be answered from: the commit point, or, on the
 * primary, the newest entry of its own view that a majority of every active configuration
 * without the joiner holds. No later primary can be elected without that entry (a candidate
 * lacking it knows only those configurations, and a majority of each holds it), so it cannot
 * be rolled back; and it is what a trust needs when the joiner's own acknowledgement is part
 * of every quorum of the configuration that trusts it (a one-node service trusting its second
 * node, or a service with a node down). Anything later may be rolled back.
 */
export function settledSeqno(
  commitSeqno: number,
  raft: RaftStatus | undefined,
  viewOf: (seqno: number) => number,
  joinerId: string,
): number {
  if (!raft) return commitSeqno;
  const before = raft.configs.map((c) => c.nodes).filter((nodes) => !nodes.includes(joinerId));
  if (before.length === 0) return commitSeqno;
  // This node is every configuration without the joiner (a one-node service trusting others):
  // every election needs its vote, so what it holds durably stays, whatever its role or view.
  // It may have stepped down for want of a quorum that needs the very joiners it must answer.
  if (before.every((nodes) => nodes.length === 1 && nodes[0] === raft.id)) {
    return Math.max(commitSeqno, raft.durableSeqno);
  }
  if (raft.role !== "primary") return commitSeqno;
  let held = Number.POSITIVE_INFINITY;
  for (const config of before) {
    if (config.length === 0) return commitSeqno;
    const values = config
      .map((id) => (id === raft.id ? raft.durableSeqno : (raft.peers[id]?.match ?? 0)))
      .sort((a, b) => b - a);
    held = Math.min(held, values[Math.floor(config.length / 2)]!);
  }
  if (!(held > commitSeqno) || viewOf(held) !== raft.view) return commitSeqno;
  return held;
}

/**
 * The settled points this node found while primary, kept per joiner after it steps down. A
 * primary whose new configuration's quorums all need the joiner (a node of the old configuration
 * down) fails its quorum check one election time-out after the trust is appended, and no node can
 * be elected until the joiner votes: had the point been computed only when the joiner next asked,
 * the joiner would stay Pending and the service would stall for good. What was settled stays
 * settled whatever this node's role since (no later primary lacks those entries, so they are
 * never truncated here), so the node keeps answering from it.
 */
export class SettledPoints {
  private readonly byJoiner = new Map<string, number>();

  /** Called on every tick, before consensus ticks (a primary may step down in that tick). */
  observe(commitSeqno: number, raft: RaftStatus | undefined, viewOf: (seqno: number) => number): void {
    if (raft?.role !== "primary") return;
    if (raft.configs.length < 2) {
      // No configuration change in flight: every trust is committed, the commit point covers it.
      this.byJoiner.clear();
      return;
    }
    for (const joinerId of joinersOf(raft.configs)) {
      const settled = settledSeqno(commitSeqno, raft, viewOf, joinerId);
      if (settled > (this.byJoiner.get(joinerId) ?? 0)) this.byJoiner.set(joinerId, settled);
    }
  }

  /** The newest seqno `joinerId` may be answered from: settled now, or found settled before. */
  for(
    joinerId: string,
    commitSeqno: number,
    raft: RaftStatus | undefined,
    viewOf: (seqno: number) => number,
  ): number {
    return Math.max(settledSeqno(commitSeqno, raft, viewOf, joinerId), this.byJoiner.get(joinerId) ?? 0);
  }
}

/** Nodes in some active configuration but not in all of them: the ones being added (or removed). */
function joinersOf(configs: RaftStatus["configs"]): string[] {
  const all = new Set(configs.flatMap((c) => c.nodes));
  return [...all].filter((id) => !configs.every((c) => c.nodes.includes(id)));
}

/** The trusted nodes a newly trusted joiner connects to, each pinned by its endorsed certificate. */
function peersFor(records: NodeRecords, joinerId: string): JoinPeer[] {
  const peers: JoinPeer[] = [];
  for (const [id, info] of records.nodes()) {
    if (id === joinerId || info.status !== "Trusted" || !info.node_address) continue;
    const certificate = records.endorsedCertificate(id);
    if (certificate) peers.push({ node_id: id, node_address: info.node_address, certificate });
  }
  return peers;
}

/** A node's certificate as `nodes.endorsed_certificates` records it, if any. */
export function readEndorsedCertificate(
  read: (map: string, key: Uint8Array) => Uint8Array | undefined,
  nodeId: string,
): string | undefined {
  const bytes = read(Tables.nodesEndorsedCertificates, utf8(nodeId));
  return bytes ? fromUtf8(bytes) : undefined;
}
