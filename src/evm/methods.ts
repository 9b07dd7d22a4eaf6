import { bytesToHex, createAddressFromString, hexToBytes, setLengthLeft } from "@ethereumjs/util";
import type { Tx } from "../kv/index.ts";
import { estimateGas, ethCall } from "./call.ts";
import { blockByHash, blockByNumber, headNumber, hex, type StoredBlock } from "./chain.ts";
import { readEvmConfig } from "./config.ts";
import { RpcError } from "./errors.ts";
import {
  type BlockFilter,
  blockNumberFor,
  type Cursor,
  type Filter,
  type Filters,
  type LogFilter,
  markSeen,
  rewind,
} from "./filters.ts";
import { blockTag, parseCriteria, queryLogs, type TxResolver } from "./logs.ts";
import { blockJson, getTx, receiptJson, type StoredTx, seqnoOfTx } from "./records.ts";
import { sendRawTransaction } from "./send.ts";
import { KvStateManager } from "./state.ts";
import { txVisible } from "./visibility.ts";

/** What the EVM needs from the node it runs in (wired once, in the node's start-up). */
export interface EvmHost {
  /** `view.seqno` of a seqno this node has, or undefined. */
  txIdOf(seqno: number): string | undefined;
  now(): number;
  randomBytes(n: number): Uint8Array;
}

export interface MethodContext {
  kv: Tx;
  bound: ReadonlySet<string>;
  host: EvmHost;
  filters: Filters;
  /** Runs `callback` once the request's answer is decided: `ok` when it was a success (now, if absent). */
  onAnswered?(callback: (ok: boolean) => void): void;
  /** The caller's view of a transaction record; private ones resolve for parties (src/evm/private). */
  lookupTx?: TxResolver;
  /** The caller's Tessera keys: which privacy groups it is party to (src/evm/private). */
  partyKeys?: Set<string>;
  /** The calling Coco user's id, for what only that user may use again (src/evm/private). */
  partyOwner?: string;
}

function resolver(ctx: MethodContext): TxResolver {
  return ctx.lookupTx ?? ((h) => getTx(ctx.kv, h));
}

type Method = (ctx: MethodContext, params: unknown[]) => unknown | Promise<unknown>;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HASH = /^0x[0-9a-fA-F]{64}$/;

function address(v: unknown, name = "address") {
  if (typeof v !== "string" || !ADDRESS.test(v))
    throw new RpcError(-32602, `invalid params: ${name} must be an address`);
  return createAddressFromString(v);
}
function hash(v: unknown): string {
  if (typeof v !== "string" || !HASH.test(v))
    throw new RpcError(-32602, "invalid params: expected a 32-byte hash");
  return v.toLowerCase();
}
/** Coco serves the current state only: a tag for an older block is refused. */
export function latestOnly(kv: Tx, tag: unknown): void {
  const head = headNumber(kv);
  if (blockTag(tag, head) < head) throw new RpcError(-32000, 'historical state is not served; use "latest"');
}

function txJson(record: StoredTx) {
  const json = record.json;
  return {
    ...json,
    hash: record.hash,
    from: record.from,
    to: record.to,
    input: json.data,
    gas: json.gasLimit,
    type: record.type,
    blockHash: record.blockHash,
    blockNumber: record.blockNumber,
    transactionIndex: "0x0",
    yParity: record.type === "0x0" ? undefined : json.v,
    ...(record.type !== "0x0" ? { gasPrice: record.effectiveGasPrice } : {}),
  };
}

function visibleTx(ctx: MethodContext, h: unknown): StoredTx | null {
  const { bound } = ctx;
  const record = resolver(ctx)(hash(h));
  return record && txVisible(record, bound) ? record : null;
}

function blockView(ctx: MethodContext, block: StoredBlock | undefined, full: unknown) {
  const { bound } = ctx;
  if (!block) return null;
  const records = block.transactions.map(resolver(ctx)).filter((r): r is StoredTx => r !== undefined);
  const seen = records.every((r) => txVisible(r, bound));
  const shown = { ...block, logsBloom: seen ? block.logsBloom : `0x${"00".repeat(256)}` };
  if (full === true) return blockJson(shown, records.filter((r) => txVisible(r, bound)).map(txJson));
  return blockJson(shown, block.transactions);
}

export const METHODS: Record<string, Method> = {
  web3_clientVersion: () => "Coco/0.1.0",
  net_version: ({ kv }) => readEvmConfig(kv).chainId.toString(),
  eth_chainId: ({ kv }) => hex(readEvmConfig(kv).chainId),
  eth_syncing: () => false,
  eth_accounts: () => [],
  eth_blockNumber: (ctx) => {
    const head = headNumber(ctx.kv);
    return hex(blockNumberFor(ctx.filters, ctx.partyOwner, head, (f) => hasChanges(ctx, f, head)));
  },
  eth_gasPrice: ({ kv }) => hex(readEvmConfig(kv).gasPrice),
  eth_maxPriorityFeePerGas: () => "0x0",
  eth_feeHistory: ({ kv }, [count, newest]) => {
    const head = headNumber(kv);
    const n = BigInt(typeof count === "number" ? count : blockTag(count, 0n, "blockCount"));
    const last = blockTag(newest, head, "newestBlock");
    const blocks = n > 1024n ? 1024n : n;
    const oldest = last + 1n > blocks ? last + 1n - blocks : 0n;
    const config = readEvmConfig(kv);
    const fees: string[] = [];
    const ratios: number[] = [];
    for (let b = oldest; b <= last; b++) {
      const block = blockByNumber(kv, b, config.blockGasLimit);
      fees.push(block?.baseFeePerGas ?? hex(config.gasPrice));
      ratios.push(block ? Number(BigInt(block.gasUsed)) / Number(BigInt(block.gasLimit)) : 0);
    }
    fees.push(hex(config.gasPrice));
    return {
      oldestBlock: hex(oldest),
      baseFeePerGas: fees,
      gasUsedRatio: ratios,
      reward: ratios.map(() => ["0x0"]),
    };
  },
  eth_getBlockByNumber: (ctx, [tag, full]) => {
    const { kv } = ctx;
    const config = readEvmConfig(kv);
    return blockView(ctx, blockByNumber(kv, blockTag(tag, headNumber(kv)), config.blockGasLimit), full);
  },
  eth_getBlockByHash: (ctx, [h, full]) =>
    blockView(ctx, blockByHash(ctx.kv, hash(h), readEvmConfig(ctx.kv).blockGasLimit), full),
  eth_getTransactionCount: async ({ kv }, [a, tag]) => {
    latestOnly(kv, tag);
    const account = await new KvStateManager(kv).getAccount(address(a));
    return hex(account?.nonce ?? 0n);
  },
  eth_getCode: async ({ kv }, [a, tag]) => {
    latestOnly(kv, tag);
    return bytesToHex(await new KvStateManager(kv).getCode(address(a)));
  },
  eth_getBalance: async ({ kv, bound }, [a, tag]) => {
    latestOnly(kv, tag);
    const who = address(a);
    if (!bound.has(who.toString())) {
      throw new RpcError(-32000, "the balance of an account not bound to the calling user is private");
    }
    return hex((await new KvStateManager(kv).getAccount(who))?.balance ?? 0n);
  },
  eth_getStorageAt: async ({ kv }, [a, slot, tag]) => {
    latestOnly(kv, tag);
    const who = address(a);
    if (typeof slot !== "string" || !/^0x[0-9a-fA-F]{1,64}$/.test(slot)) {
      throw new RpcError(-32602, "invalid params: slot must be a hex quantity");
    }
    const key = setLengthLeft(hexToBytes(`0x${slot.slice(2).padStart(64, "0")}` as `0x${string}`), 32);
    if (!PUBLIC_SLOTS.has(bytesToHex(key))) return `0x${"00".repeat(32)}`;
    return bytesToHex(setLengthLeft(await new KvStateManager(kv).getStorage(who, key), 32));
  },
  eth_call: ({ kv, bound, host }, [request, tag]) => {
    latestOnly(kv, tag);
    return ethCall(kv, request, bound, host, host.now);
  },
  eth_estimateGas: ({ kv, bound, host }, [request, tag]) => {
    latestOnly(kv, tag);
    return estimateGas(kv, request, bound, host, host.now);
  },
  eth_sendRawTransaction: ({ kv, bound, host }, [raw]) => sendRawTransaction(kv, raw, bound, host.now, host),
  eth_getTransactionByHash: (ctx, [h]) => {
    const record = visibleTx(ctx, h);
    return record ? txJson(record) : null;
  },
  eth_getTransactionReceipt: (ctx, [h]) => {
    const { kv, host } = ctx;
    const record = visibleTx(ctx, h);
    if (!record) return null;
    // Beyond Ethereum: the Coco transaction that holds it, for `GET /app/receipt`.
    const seqno = seqnoOfTx(kv, record.hash);
    const cocoTransactionId = seqno === undefined ? null : (host.txIdOf(seqno) ?? null);
    return { ...receiptJson(record), cocoTransactionId };
  },
  eth_getLogs: (ctx, [filter]) => {
    const { kv, bound } = ctx;
    if (typeof filter !== "object" || filter === null)
      throw new RpcError(-32602, "invalid params: expected a filter object");
    const f = filter as Record<string, unknown>;
    const head = headNumber(kv);
    const config = readEvmConfig(kv);
    if (f.blockHash !== undefined) {
      const block = blockByHash(kv, hash(f.blockHash), config.blockGasLimit);
      if (!block) throw new RpcError(-32000, "unknown block");
      const n = BigInt(block.number);
      return queryLogs(
        kv,
        { from: n, to: n, ...parseCriteria(f) },
        bound,
        config.blockGasLimit,
        resolver(ctx),
      );
    }
    const from = blockTag(f.fromBlock, head, "fromBlock");
    const to = blockTag(f.toBlock, head, "toBlock");
    return queryLogs(kv, { from, to, ...parseCriteria(f) }, bound, config.blockGasLimit, resolver(ctx));
  },
  eth_newFilter: ({ kv, filters, host, partyOwner }, [filter]) => {
    if (typeof filter !== "object" || filter === null)
      throw new RpcError(-32602, "invalid params: expected a filter object");
    const f = filter as Record<string, unknown>;
    const head = headNumber(kv);
    const tag = (v: unknown) =>
      v === undefined || v === "latest" || v === "pending" ? "latest" : blockTag(v, head);
    const fromBlock = tag(f.fromBlock);
    const installed: LogFilter = {
      kind: "logs",
      fromBlock,
      toBlock: tag(f.toBlock),
      ...parseCriteria(f),
      seen: 0n,
      hashes: new Map(),
      touched: host.now(),
      owner: partyOwner,
    };
    markSeen(installed, fromBlock === "latest" ? head : fromBlock - 1n, hashOf(kv));
    return filters.add(installed);
  },
  eth_newBlockFilter: ({ kv, filters, host, partyOwner }) => {
    const filter: BlockFilter = {
      kind: "blocks",
      seen: 0n,
      hashes: new Map(),
      touched: host.now(),
      owner: partyOwner,
    };
    markSeen(filter, headNumber(kv), hashOf(kv));
    return filters.add(filter);
  },
  eth_uninstallFilter: ({ filters }, [id]) => filters.remove(id),
  eth_getFilterChanges: (ctx, [id]) => {
    const { kv, filters, bound } = ctx;
    const filter = filters.get(id);
    if (!filter) throw new RpcError(-32000, "filter not found");
    filters.polled(filter);
    const head = headNumber(kv);
    const config = readEvmConfig(kv);
    // The cursor moves only once the answer is out: one that fails (a commit wait that timed out
    // during an election) leaves these changes to the next poll instead of losing them.
    const cursor: Cursor = { seen: filter.seen, hashes: new Map(filter.hashes) };
    const advance = () => {
      filter.seen = cursor.seen;
      filter.hashes = cursor.hashes;
    };
    if (ctx.onAnswered) ctx.onAnswered((ok) => ok && advance());
    rewind(cursor, hashOf(kv));
    if (filter.kind === "blocks") {
      const out: string[] = [];
      for (let n = cursor.seen + 1n; n <= head; n++)
        out.push(blockByNumber(kv, n, config.blockGasLimit)!.hash);
      markSeen(cursor, head, hashOf(kv));
      if (!ctx.onAnswered) advance();
      return out;
    }
    let to = filter.toBlock === "latest" ? head : filter.toBlock;
    if (to > head) to = head;
    if (to - cursor.seen > 10_000n) to = cursor.seen + 10_000n;
    const logs = queryLogs(
      kv,
      { ...filter, from: cursor.seen + 1n, to },
      bound,
      config.blockGasLimit,
      resolver(ctx),
    );
    markSeen(cursor, to, hashOf(kv));
    if (!ctx.onAnswered) advance();
    return logs;
  },
  eth_getFilterLogs: (ctx, [id]) => {
    const { kv, filters, bound } = ctx;
    const filter = filters.get(id);
    if (filter?.kind !== "logs") throw new RpcError(-32000, "filter not found");
    const head = headNumber(kv);
    const from = filter.fromBlock === "latest" ? head : filter.fromBlock;
    const to = filter.toBlock === "latest" ? head : filter.toBlock;
    return queryLogs(kv, { ...filter, from, to }, bound, readEvmConfig(kv).blockGasLimit, resolver(ctx));
  },
  /** Coco's own: the Coco transaction that recorded an Ethereum transaction, for its receipt. */
  coco_getTransactionId: (ctx, [h]) => {
    const { kv, host } = ctx;
    const record = visibleTx(ctx, h);
    if (!record) return null;
    const seqno = seqnoOfTx(kv, record.hash);
    return seqno === undefined ? null : (host.txIdOf(seqno) ?? null);
  },
};

/** The storage slots anyone may read: EIP-1967's proxy implementation, admin and beacon slots. */
const PUBLIC_SLOTS = new Set([
  "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc",
  "0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103",
  "0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50",
]);

/**
 * Methods whose JSON-RPC request must run on the primary (they write). Filters are not among
 * them: each node keeps the filters installed on it (see filters.ts).
 */
export const PRIMARY_METHODS = new Set(["eth_sendRawTransaction"]);

/** True when `filter` has something to report up to `head` (a log filter: a log it matches). */
function hasChanges(ctx: MethodContext, filter: Filter, head: bigint): boolean {
  if (filter.kind === "blocks") return filter.seen < head;
  let to = filter.toBlock === "latest" ? head : filter.toBlock;
  if (to > head) to = head;
  if (to - filter.seen > 10_000n) to = filter.seen + 10_000n;
  if (to <= filter.seen) return false;
  const config = readEvmConfig(ctx.kv);
  const q = { ...filter, from: filter.seen + 1n, to };
  return queryLogs(ctx.kv, q, ctx.bound, config.blockGasLimit, resolver(ctx)).length > 0;
}

/** A block's hash by number on this node's chain, as `markSeen` and `rewind` read it. */
function hashOf(kv: Tx): (n: bigint) => string | undefined {
  const gasLimit = readEvmConfig(kv).blockGasLimit;
  return (n) => blockByNumber(kv, n, gasLimit)?.hash;
}
