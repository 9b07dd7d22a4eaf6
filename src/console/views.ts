/**
 * What the console server answers about the network, as JSON: shared by the server (monitor.ts)
 * and the browser (console/src/api.ts imports these types; they have no imports of their own).
 */
export interface NodeView {
  nodeId: string;
  rpcAddress: string;
  nodeAddress: string | null;
  /** The governance status: Trusted, Pending, Retired. */
  status: string;
  /** What the node says of itself: Primary, Backup, Candidate, ...; null when unreachable. */
  role: string | null;
  primary: boolean;
  view: number | null;
  commitSeqno: number | null;
  lastSeqno: number | null;
  /** The primary's commit seqno minus this node's. */
  commitLag: number | null;
  live: boolean;
  /** When the node last answered (ms since the epoch), or null if never. */
  lastSeen: number | null;
  /** Why the last poll failed. */
  error: string | null;
  nodeCertificateValidTo: string | null;
  serviceCertificateValidTo: string | null;
  platform: string | null;
  measurement: string | null;
  insecure: boolean | null;
  version: string | null;
}

export interface NetworkView {
  updatedAt: number;
  service: {
    status: string;
    view: number | null;
    primaryId: string | null;
    commitTransactionId: string | null;
  };
  nodes: NodeView[];
  /** Seconds since the epoch; committed transactions per second; commit latency in ms. */
  series: { t: number[]; txPerSecond: number[]; commitLatencyMs: Array<number | null> };
}
