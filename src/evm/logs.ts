import type { Tx } from "../kv/index.ts";
import { blockByNumber, headNumber } from "./chain.ts";
import { RpcError } from "./errors.ts";
import { getTx, logJson, type StoredTx } from "./records.ts";
import { logVisible } from "./visibility.ts";

/** At most this many blocks per `eth_getLogs` (one transaction per block). */
export const MAX_LOG_RANGE = 10_000n;

export interface LogQuery {
  from: bigint;
  to: bigint;
  addresses: string[];
  topics: Array<string[] | null>;
}

const HASH = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export function blockTag(tag: unknown, head: bigint, name = "block"): bigint {
  if (
    tag === undefined ||
    tag === null ||
    tag === "latest" ||
    tag === "pending" ||
    tag === "safe" ||
    tag === "finalized"
  ) {
    return head;
  }
  if (tag === "earliest") return 0n;
  if (typeof tag === "string" && /^0x[0-9a-fA-F]{1,16}$/.test(tag)) return BigInt(tag);
  throw new RpcError(-32602, `invalid params: ${name} must be a block number or tag`);
}

/** Reads the address and topic parts of a filter object, refusing what is malformed. */
export function parseCriteria(filter: Record<string, unknown>): Pick<LogQuery, "addresses" | "topics"> {
  const address = filter.address;
  const addresses =
    address === undefined || address === null ? [] : Array.isArray(address) ? address : [address];
  for (const a of addresses) {
    if (typeof a !== "string" || !ADDRESS.test(a)) throw new RpcError(-32602, "invalid params: bad address");
  }
  const rawTopics = filter.topics ?? [];
  if (!Array.isArray(rawTopics) || rawTopics.length > 4) {
    throw new RpcError(-32602, "invalid params: topics must be an array of at most 4");
  }
  const topics = rawTopics.map((t) => {
    if (t === null) return null;
    const list = Array.isArray(t) ? t : [t];
    for (const x of list)
      if (typeof x !== "string" || !HASH.test(x)) throw new RpcError(-32602, "invalid params: bad topic");
    return (list as string[]).map((x) => x.toLowerCase());
  });
  return { addresses: (addresses as string[]).map((a) => a.toLowerCase()), topics };
}

/** Reads a transaction's record as the caller may see it (a party gets a private one's). */
export type TxResolver = (hash: string) => StoredTx | undefined;

export function queryLogs(
  kv: Tx,
  q: LogQuery,
  bound: ReadonlySet<string>,
  gasLimit: bigint,
  resolve: TxResolver = (h) => getTx(kv, h),
) {
  const head = headNumber(kv);
  let to = q.to;
  if (to > head) to = head;
  if (to >= q.from && to - q.from >= MAX_LOG_RANGE) {
    throw new RpcError(-32005, `query exceeds ${MAX_LOG_RANGE} blocks; narrow the range`);
  }
  const out: ReturnType<typeof logJson>[] = [];
  for (let n = q.from < 1n ? 1n : q.from; n <= to; n++) {
    const block = blockByNumber(kv, n, gasLimit);
    if (!block) continue;
    for (const hash of block.transactions) {
      const record = resolve(hash);
      if (!record) continue;
      for (const log of record.logs) {
        if (q.addresses.length > 0 && !q.addresses.includes(log.address)) continue;
        if (
          !q.topics.every((t, i) => t === null || (log.topics[i] !== undefined && t.includes(log.topics[i]!)))
        )
          continue;
        if (!logVisible(record, log, bound)) continue;
        out.push(logJson(record, log));
      }
    }
  }
  return out;
}
