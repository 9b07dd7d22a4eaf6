import type { Logger } from "pino";
import type { RaftStatus } from "../consensus/index.ts";
import { type LedgerState, Tables } from "../ledger/index.ts";
import type { NodeChannels, RequestOptions } from "../net/index.ts";
import type { JoinPeer } from "./join.ts";
import { NodeError } from "./node-error.ts";

/** What the peer set needs of its node. */
export interface PeersHost {
  nodeId: string;
  log: Logger;
  state: LedgerState;
  channels: NodeChannels;
  /** Nodes named in the join answer; used until the replicated `nodes.info` lists any. */
  joinPeers: JoinPeer[];
  endorsedCertificate(nodeId: string): string | undefined;
  consensusStatus(): RaftStatus | undefined;
  /** Requests that are the node's own business (snapshot installs), or undefined for the rest. */
  ownRequest(from: string, message: unknown): Promise<unknown> | undefined;
}

/**
 * The node's peers: which nodes it keeps channels to (refreshed when `nodes.info` changes and
 * every ten ticks), and the requests other nodes send it.
 */
export class Peers {
  private version = -1;
  private ticksSinceRefresh = 0;
  private handler: ((from: string, message: unknown) => Promise<unknown>) | undefined;
  /** What each peer was last set to (address and certificate), so an unchanged one is not re-parsed. */
  private readonly settings = new Map<string, string>();
  /** Nodes found Trusted in the nodes table as it stood (see servesAsPeer). */
  private trusted: { table: object | null; ids: Set<string> } = { table: null, ids: new Set() };

  constructor(private readonly host: PeersHost) {
    host.channels.onRequest((from, message) => this.serve(from, message));
  }

  /** On every consensus tick: also every ten ticks, since a retiring node stays a peer until consensus stops tracking it. */
  tick(): void {
    if (this.host.state.nodesInfoVersion !== this.version || ++this.ticksSinceRefresh >= 10) this.refresh();
  }

  /**
   * Keeps a channel to every node that is Trusted in this node's store, or that consensus still
   * counts or replicates to (a retiring node, so it learns that its removal committed and a
   * retiring primary can hand over). Pending nodes are never peers. Each peer is pinned to its
   * endorsed certificate: the channels accept that certificate and no other for it.
   */
  refresh(): void {
    const { state, channels, nodeId, log } = this.host;
    this.version = state.nodesInfoVersion;
    this.ticksSinceRefresh = 0;
    const wanted = new Set<string>();
    const peers = channels.stats();
    const known = state.nodes();
    for (const [id, info] of known) {
      if (id === nodeId || !info.node_address || !this.servesAsPeer(id)) continue;
      const certificate = this.host.endorsedCertificate(id);
      if (!certificate) continue;
      try {
        // setPeer parses the certificate (two X.509 parses): only when something changed.
        const setting = `${info.node_address}\n${certificate}`;
        if (this.settings.get(id) !== setting || !(id in peers)) {
          channels.setPeer(id, info.node_address, certificate);
          this.settings.set(id, setting);
        }
        wanted.add(id);
      } catch (e) {
        log.error(
          { err: e, node: id },
          "cannot reach a trusted node: its recorded address or certificate is unusable",
        );
      }
    }
    if (known.length === 0) {
      for (const peer of this.host.joinPeers) {
        wanted.add(peer.node_id);
        channels.setPeer(peer.node_id, peer.node_address, peer.certificate);
        this.settings.delete(peer.node_id);
      }
    }
    for (const id of Object.keys(channels.stats())) {
      if (wanted.has(id)) continue;
      channels.removePeer(id);
      this.settings.delete(id);
    }
  }

  /**
   * Whether `nodeId` is one of the service's nodes as far as this node talks to it: Trusted in
   * this node's store, or still counted or replicated to by consensus (a retiring node). Pending
   * nodes never are: they are neither peers nor senders of forwarded calls.
   */
  servesAsPeer(nodeId: string): boolean {
    // Asked for every forwarded call: a node found Trusted stays so while the nodes table is
    // unchanged (its map state is the same object), and reading the table parses every record.
    const table = this.host.state.store.mapState(Tables.nodesInfo);
    if (table !== null && table === this.trusted.table && this.trusted.ids.has(nodeId)) return true;
    const info = this.host.state.nodes().find(([id]) => id === nodeId)?.[1];
    if (!info || info.status === "Pending") return false;
    if (info.status === "Trusted") {
      if (this.trusted.table !== table) this.trusted = { table, ids: new Set() };
      this.trusted.ids.add(nodeId);
      return true;
    }
    const status = this.host.consensusStatus();
    return (
      status?.configs.some((c) => c.nodes.includes(nodeId)) === true || status?.peers?.[nodeId] !== undefined
    );
  }

  /** Sends a request to another node of the service over the node-to-node channel. */
  request(to: string, message: unknown, timeoutMs: number, options?: RequestOptions): Promise<unknown> {
    return this.host.channels.request(to, message, timeoutMs, options);
  }

  /** Serves requests from other nodes (forwarded client calls). */
  onRequest(handler: (from: string, message: unknown) => Promise<unknown>): void {
    this.handler = handler;
  }

  private serve(from: string, message: unknown): Promise<unknown> {
    const own = this.host.ownRequest(from, message);
    if (own) return own;
    if (!this.handler) return Promise.reject(new NodeError("this node serves no requests yet"));
    return this.handler(from, message);
  }
}
