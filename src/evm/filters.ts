import { randomBytes } from "node:crypto";

/** What `eth_newFilter` asked for. */
export interface LogFilter {
  kind: "logs";
  fromBlock: bigint | "latest";
  toBlock: bigint | "latest";
  addresses: string[];
  topics: Array<string[] | null>;
  /** The last block already reported by `eth_getFilterChanges`. */
  seen: bigint;
  touched: number;
}

export interface BlockFilter {
  kind: "blocks";
  seen: bigint;
  touched: number;
}

export type Filter = LogFilter | BlockFilter;

/** Filters unused this long are dropped, as Ethereum nodes do. */
const IDLE_MS = 5 * 60_000;
const MAX_FILTERS = 10_000;

/**
 * Installed filters, held in memory by the node that answers for them. The filter methods run
 * on the primary (their JSON-RPC mode is read-write, so backups forward them), so one client's
 * filters stay in one place; after a change of primary a client gets "filter not found" and
 * installs its filter again (ethers and viem do).
 */
export class Filters {
  private readonly filters = new Map<string, Filter>();

  constructor(private readonly now: () => number) {}

  add(filter: Filter): string {
    this.expire();
    if (this.filters.size >= MAX_FILTERS) throw new Error("too many filters installed");
    const id = `0x${randomBytes(16).toString("hex")}`;
    this.filters.set(id, filter);
    return id;
  }

  get(id: unknown): Filter | undefined {
    if (typeof id !== "string") return undefined;
    const filter = this.filters.get(id.toLowerCase());
    if (filter) filter.touched = this.now();
    return filter;
  }

  remove(id: unknown): boolean {
    return typeof id === "string" && this.filters.delete(id.toLowerCase());
  }

  private expire(): void {
    const limit = this.now() - IDLE_MS;
    for (const [id, f] of this.filters) if (f.touched < limit) this.filters.delete(id);
  }
}
