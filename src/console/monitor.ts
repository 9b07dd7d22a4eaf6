import type { Gateway } from "./gateway.ts";
import type { NetworkView, NodeView } from "./views.ts";

export type { NetworkView, NodeView };

/** Points kept per chart series (at the default interval: two minutes). */
const SERIES_LENGTH = 240;

interface ConsensusAnswer {
  role?: string;
  view?: number;
  leader?: string | null;
  commitSeqno?: number;
  lastSeqno?: number;
}

/**
 * Polls every node's operator endpoints and keeps what the Network page shows. Throughput is the
 * primary's commit seqno over time. Commit latency is measured from outside: the time from when
 * a poll first sees a seqno appended at the primary to when a poll sees it committed, so it is an
 * upper bound with the polling interval as its resolution (docs/console.md).
 */
export class NetworkMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly nodes = new Map<string, NodeView>();
  private readonly attestations = new Map<string, Pick<NodeView, "platform" | "measurement" | "insecure">>();
  private readonly versions = new Map<string, string>();
  private service: NetworkView["service"] = {
    status: "Unknown",
    view: null,
    primaryId: null,
    commitTransactionId: null,
  };
  private readonly series: NetworkView["series"] = { t: [], txPerSecond: [], commitLatencyMs: [] };
  private previous: { at: number; commit: number } | undefined;
  /** Seqnos seen appended at the primary and when, waiting to be seen committed. */
  private pending: Array<{ seqno: number; at: number }> = [];
  private updatedAt = 0;

  constructor(
    private readonly gateway: Gateway,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    const loop = async () => {
      this.running = this.poll().catch(() => {});
      await this.running;
      if (this.timer !== undefined) this.timer = setTimeout(loop, this.intervalMs);
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  view(): NetworkView {
    return {
      updatedAt: this.updatedAt,
      service: this.service,
      nodes: [...this.nodes.values()].sort((a, b) => a.rpcAddress.localeCompare(b.rpcAddress)),
      series: this.series,
    };
  }

  /** One round: the node list from any node, then every node's own view of itself. */
  async poll(): Promise<void> {
    const now = Date.now();
    const list = await this.gateway.read<{
      nodes: Array<{ node_id: string; status: string; rpc_address: string; node_address: string | null }>;
    }>("/node/network/nodes");
    if (list.ok) {
      this.gateway.learn(list.body.nodes.map((n) => n.rpc_address));
      for (const n of list.body.nodes) {
        const known = this.nodes.get(n.node_id);
        this.nodes.set(n.node_id, {
          ...(known ?? blankNode(n.node_id, n.rpc_address)),
          rpcAddress: n.rpc_address,
          nodeAddress: n.node_address,
          status: n.status,
        });
      }
    }
    const network = await this.gateway.read<{
      service_status: string;
      current_view: number;
      primary_id: string | null;
    }>("/node/network");
    if (network.ok) {
      this.service = {
        ...this.service,
        status: network.body.service_status,
        view: network.body.current_view,
        primaryId: network.body.primary_id,
      };
    }
    await Promise.all([...this.nodes.values()].map((node) => this.pollNode(node, now)));
    const primary = [...this.nodes.values()].find((n) => n.live && n.role === "Primary");
    this.gateway.primaryAddress = primary?.rpcAddress;
    if (primary) this.service.primaryId = primary.nodeId;
    for (const node of this.nodes.values()) {
      node.primary = node.nodeId === this.service.primaryId;
      node.commitLag =
        primary?.commitSeqno != null && node.commitSeqno != null && node.live
          ? Math.max(0, primary.commitSeqno - node.commitSeqno)
          : null;
    }
    if (primary?.commitSeqno != null && primary.lastSeqno != null) {
      this.sample(now, primary.commitSeqno, primary.lastSeqno, primary.view);
    }
    this.updatedAt = now;
  }

  private async pollNode(node: NodeView, now: number): Promise<void> {
    const [state, consensus] = await Promise.all([
      this.gateway.call<{
        node_id: string;
        node_certificate_valid_to: string;
        service_certificate_valid_to: string;
      }>(node.rpcAddress, "/node/state"),
      this.gateway.call<ConsensusAnswer>(node.rpcAddress, "/node/consensus"),
    ]);
    if (!state.ok || !consensus.ok) {
      node.live = false;
      node.role = null;
      node.error = state.ok ? (consensus.ok ? null : consensus.message) : state.message;
      return;
    }
    node.live = true;
    node.lastSeen = now;
    node.error = null;
    node.nodeCertificateValidTo = state.body.node_certificate_valid_to;
    node.serviceCertificateValidTo = state.body.service_certificate_valid_to;
    const c = consensus.body;
    node.role = c.role ? c.role[0]!.toUpperCase() + c.role.slice(1) : null;
    node.view = c.view ?? null;
    node.commitSeqno = c.commitSeqno ?? null;
    node.lastSeqno = c.lastSeqno ?? null;
    if (!this.versions.has(node.nodeId)) {
      const version = await this.gateway.call<{ coco_version: string }>(node.rpcAddress, "/node/version");
      if (version.ok) this.versions.set(node.nodeId, version.body.coco_version);
    }
    node.version = this.versions.get(node.nodeId) ?? null;
    if (!this.attestations.has(node.nodeId)) {
      const att = await this.gateway.call<{ format: string; measurement: string; insecure: boolean }>(
        node.rpcAddress,
        "/node/attestations/self",
      );
      if (att.ok) {
        this.attestations.set(node.nodeId, {
          platform: att.body.format,
          measurement: att.body.measurement,
          insecure: att.body.insecure,
        });
      }
    }
    Object.assign(node, this.attestations.get(node.nodeId) ?? {});
  }

  private sample(now: number, commit: number, last: number, view: number | null): void {
    if (view !== null) this.service.commitTransactionId = `${view}.${commit}`;
    const lastPending = this.pending.at(-1);
    if (last > commit && (!lastPending || last > lastPending.seqno))
      this.pending.push({ seqno: last, at: now });
    const latencies: number[] = [];
    while (this.pending.length > 0 && this.pending[0]!.seqno <= commit) {
      latencies.push(now - this.pending.shift()!.at);
    }
    if (this.previous && now > this.previous.at) {
      const rate = Math.max(0, ((commit - this.previous.commit) * 1000) / (now - this.previous.at));
      this.push(now / 1000, Math.round(rate * 10) / 10, latencies.length ? Math.max(...latencies) : null);
    }
    this.previous = { at: now, commit };
  }

  private push(t: number, rate: number, latency: number | null): void {
    this.series.t.push(t);
    this.series.txPerSecond.push(rate);
    this.series.commitLatencyMs.push(latency);
    if (this.series.t.length > SERIES_LENGTH) {
      this.series.t.shift();
      this.series.txPerSecond.shift();
      this.series.commitLatencyMs.shift();
    }
  }
}

function blankNode(nodeId: string, rpcAddress: string): NodeView {
  return {
    nodeId,
    rpcAddress,
    nodeAddress: null,
    status: "Unknown",
    role: null,
    primary: false,
    view: null,
    commitSeqno: null,
    lastSeqno: null,
    commitLag: null,
    live: false,
    lastSeen: null,
    error: null,
    nodeCertificateValidTo: null,
    serviceCertificateValidTo: null,
    platform: null,
    measurement: null,
    insecure: null,
    version: null,
  };
}
