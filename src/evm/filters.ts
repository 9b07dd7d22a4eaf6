import { randomBytes } from "node:crypto";

/** Where a filter's `eth_getFilterChanges` resumes. */
export interface Cursor {
  /** The last block already reported by `eth_getFilterChanges`. */
  seen: bigint;
  /** Hashes of the last blocks reported, to notice when a rollback replaced them. */
  hashes: Map<bigint, string>;
}

/** What `eth_newFilter` asked for. */
/** What every filter keeps besides what it asks for. */
interface FilterState extends Cursor {
  touched: number;
  /** Who installed it: only that caller's `eth_blockNumber` is shaped by it (see `blockNumberFor`). */
  owner?: string;
  /** When it was last polled, and whether its hold (see `blockNumberFor`) is still to be served. */
  polled?: number;
  armed?: boolean;
}

export interface LogFilter extends FilterState {
  kind: "logs";
  fromBlock: bigint | "latest";
  toBlock: bigint | "latest";
  addresses: string[];
  topics: Array<string[] | null>;
}

export interface BlockFilter extends FilterState {
  kind: "blocks";
}

export type Filter = LogFilter | BlockFilter;

/** Filters unused this long are dropped, as Ethereum nodes do. */
const IDLE_MS = 5 * 60_000;
const MAX_FILTERS = 10_000;
/**
 * How long after a filter's poll the first `eth_blockNumber` that finds it with changes is held
 * (see `blockNumberFor`): the time a poll's answer may take to reach the client and be handled.
 */
const ARMED_MS = 5_000;
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
  /** Per Coco user, the highest block number `eth_blockNumber` answered them on this node. */
  private readonly answered = new Map<string, bigint>();

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

  /** Marks `filter` polled now: its hold is to be served again. */
  polled(filter: Filter): void {
    filter.polled = this.now();
    filter.armed = true;
  }

  /** The filters `owner` installed whose hold, armed by a poll in the last ARMED_MS, is unserved. */
  armedBy(owner: string): Filter[] {
    const since = this.now() - ARMED_MS;
    const armed: Filter[] = [];
    for (const f of this.filters.values())
      if (f.owner === owner && f.armed && f.polled !== undefined && f.polled >= since) armed.push(f);
    return armed;
  }

  /** The highest block number answered to `owner`, or -1 if none. */
  highestAnswered(owner: string): bigint {
    return this.answered.get(owner) ?? -1n;
  }

  recordAnswer(owner: string, number: bigint): void {
    if (number > this.highestAnswered(owner)) this.answered.set(owner, number);
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
 * `eth_blockNumber` as `owner` sees it on this node: never lower than a number answered to them
 * before, and the head except once after a poll of theirs. A client that polls its filters once
 * per new block it sees (ethers 6 does) reads the block number afresh after each poll as its new
 * starting point; a block that lands between the poll's answer and that read would wake it only
 * at the next block, and on Coco, where a block is made only by a transaction, none may come. So
 * the first answer, within ARMED_MS of a poll, that finds the polled filter with changes it has
 * not reported is held at the filter's cursor (the last block it reported), raised to the highest
 * number answered before: the client starts from there, its next read gets the head, a new block,
 * and it polls. One held answer serves every armed filter of the caller; reads that find nothing
 * pending leave the hold armed (they may be another client's of the same user).
 * At most one armed filter per call is found with changes (`hasChanges`, bounded by its caller).
 */
export function blockNumberFor(
  filters: Filters,
  owner: string | undefined,
  head: bigint,
  hasChanges: (filter: Filter) => boolean,
): bigint {
  if (!owner) return head;
  const highest = filters.highestAnswered(owner);
  let answer = larger(head, highest);
  if (highest < head) {
    const armed = filters.armedBy(owner).filter((f) => f.seen < head);
    // Lowest cursor first: the first with changes gives the lowest hold, no need to look further.
    armed.sort((a, b) => (a.seen < b.seen ? -1 : a.seen > b.seen ? 1 : 0));
    const pending = armed.find((f) => hasChanges(f));
    if (pending) {
      answer = larger(pending.seen, highest);
      for (const f of armed) f.armed = false;
    }
  }
  filters.recordAnswer(owner, answer);
  return answer;
}

function larger(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
