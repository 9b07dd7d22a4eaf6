import { randomBytes } from "node:crypto";

/** Where a filter's `eth_getFilterChanges` resumes. */
export interface Cursor {
  /** The last block already reported by `eth_getFilterChanges`. */
  seen: bigint;
  /** Hashes of the last blocks reported, to notice when a rollback replaced them. */
  hashes: Map<bigint, string>;
}

/** What `eth_newFilter` asked for. */
export interface LogFilter extends Cursor {
  kind: "logs";
  fromBlock: bigint | "latest";
  toBlock: bigint | "latest";
  addresses: string[];
  topics: Array<string[] | null>;
  touched: number;
  /** Who installed it: only that caller's `eth_blockNumber` is shaped by it (see `blockNumberFor`). */
  owner?: string;
  /** When it was last polled, and whether the caller's last `eth_blockNumber` answered its cursor. */
  polled?: number;
  lagged?: boolean;
}

export interface BlockFilter extends Cursor {
  kind: "blocks";
  touched: number;
  owner?: string;
  polled?: number;
  lagged?: boolean;
}

export type Filter = LogFilter | BlockFilter;

/** Filters unused this long are dropped, as Ethereum nodes do. */
const IDLE_MS = 5 * 60_000;
const MAX_FILTERS = 10_000;
/** A filter polled this recently is being followed: its unreported changes shape `eth_blockNumber`. */
const FOLLOWED_MS = 60_000;
/** How many reported block hashes a filter remembers (a rollback deeper than this restarts there). */
const REMEMBERED = 64n;

/**
 * Installed filters, held in memory by the node asked, and answered from its own store, as an
 * Ethereum node does: a client polls the node it installed on. They are not kept on the primary:
 * a change of primary would lose them, and ethers 6 never installs a lost filter again (its poller
 * logs the "filter not found" and stops delivering), nor one whose `eth_newFilter` failed while a
 * backup was waiting out an election.
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

  /** The filters `owner` installed and polled within the last FOLLOWED_MS. */
  *followedBy(owner: string): Iterable<Filter> {
    const since = this.now() - FOLLOWED_MS;
    for (const f of this.filters.values())
      if (f.owner === owner && f.polled !== undefined && f.polled >= since) yield f;
  }

  private expire(): void {
    const limit = this.now() - IDLE_MS;
    for (const [id, f] of this.filters) if (f.touched < limit) this.filters.delete(id);
  }
}

/**
 * Remembers that blocks up to `to` were reported, with their hashes in `hashOf` (the node's
 * chain as read now); only the last REMEMBERED are kept.
 */
export function markSeen(filter: Cursor, to: bigint, hashOf: (n: bigint) => string | undefined): void {
  const start = to - REMEMBERED + 1n > filter.seen + 1n ? to - REMEMBERED + 1n : filter.seen + 1n;
  for (let n = start; n <= to; n++) {
    const hash = hashOf(n);
    if (hash !== undefined) filter.hashes.set(n, hash);
  }
  if (to > filter.seen) filter.seen = to;
  for (const n of filter.hashes.keys())
    if (n <= filter.seen - REMEMBERED || n > filter.seen) filter.hashes.delete(n);
}

/**
 * Moves the cursor back below blocks reported earlier that the node's chain no longer holds: a
 * node may serve blocks not yet committed, and a change of primary rolls those back and reuses
 * their numbers for other blocks, whose logs the filter must still report.
 */
export function rewind(filter: Cursor, hashOf: (n: bigint) => string | undefined): void {
  for (;;) {
    const known = filter.hashes.get(filter.seen);
    // Unremembered (the install point, or a rollback deeper than remembered): trusted as is.
    if (known === undefined || hashOf(filter.seen) === known) return;
    filter.hashes.delete(filter.seen);
    filter.seen--;
  }
}

/**
 * `eth_blockNumber` as `owner` sees it. A client that polls its filters once per new block it
 * sees (ethers 6 does) misses changes that land between a poll's answer and the block number it
 * reads next: it takes that number as its new starting point, and on Coco, where a block is made
 * only by a transaction, no later block may come to wake it. So while one of the caller's
 * followed filters has changes not yet reported, answers alternate between that filter's cursor
 * (the last block it reported) and the head: whichever the client read last, the next answer
 * differs, it sees a new block and polls. Once the filter is polled, answers are the head again.
 */
export function blockNumberFor(
  filters: Filters,
  owner: string | undefined,
  head: bigint,
  hasChanges: (filter: Filter) => boolean,
): bigint {
  if (!owner) return head;
  let answer = head;
  for (const f of filters.followedBy(owner)) {
    if (f.seen >= head || !hasChanges(f)) {
      f.lagged = false;
      continue;
    }
    f.lagged = !f.lagged;
    if (f.lagged && f.seen < answer) answer = f.seen;
  }
  return answer;
}
