import type { Common } from "@ethereumjs/common";
import {
  AccessList2930Tx,
  Capability,
  FeeMarket1559Tx,
  LegacyTx,
  type TypedTransaction,
} from "@ethereumjs/tx";
import { Address, MAX_INTEGER, MAX_UINT64, SECP256K1_ORDER_DIV_2 } from "@ethereumjs/util";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { keccak256 } from "./keccak.ts";

/**
 * Signed legacy (EIP-155), EIP-2930 and EIP-1559 transactions decoded straight from their bytes.
 *
 * ethereumjs's `createTxFromRLP` decodes the RLP into arrays, validates them in its constructors,
 * and then, for the transaction hash and the signer's hash, encodes the fields back into RLP twice.
 * Here the bytes are read once, canonically, keeping each field's place: the transaction hash is
 * the keccak-256 of the bytes as received (they are the canonical encoding, or they are not taken
 * here), the signing hash is hashed over the received fields' own bytes, and the sender's public key
 * is recovered once. The result is an instance of ethereumjs's own class with the same fields (and
 * its hash and sender cached, as ethereumjs caches them), so everything downstream, `runTx`
 * included, sees what `createTxFromRLP` would have built.
 *
 * It accepts only what ethereumjs accepts: the same checks as its RLP decoder and its constructors
 * (leading zeroes, lengths, bounds, the chain id, EIP-155's `v`, y-parity, the fee cap, low `s`,
 * the access list's shape). Anything else, and anything it does not cover (other types, unsigned,
 * pre-EIP-155), answers `undefined`, and the caller decodes with
 * ethereumjs, which accepts or refuses it with its own message. test/evm/decode.test.ts holds the
 * two to the same answers on generated and malformed transactions.
 */

/** One RLP item: its encoding starts at `at`; its payload is [start, end). */
interface Item {
  list: boolean;
  at: number;
  start: number;
  end: number;
}

/** Reads the canonical RLP item at `at` ending by `limit`, or undefined (ethereumjs's decoder refuses it, or it is too long for a transaction). */
function readItem(b: Uint8Array, at: number, limit: number): Item | undefined {
  if (at >= limit) return undefined;
  const p = b[at]!;
  if (p < 0x80) return { list: false, at, start: at, end: at + 1 };
  let list = false;
  let len: number;
  let start: number;
  if (p <= 0xb7 || (p >= 0xc0 && p <= 0xf7)) {
    list = p >= 0xc0;
    len = p - (list ? 0xc0 : 0x80);
    start = at + 1;
    // A single byte below 0x80 is its own encoding, never prefixed.
    if (!list && len === 1 && start < limit && b[start]! < 0x80) return undefined;
  } else {
    list = p > 0xbf;
    const lenOfLen = p - (list ? 0xf7 : 0xb7);
    // Lengths over 2^32 bytes are never a transaction; no leading zero in the length.
    if (lenOfLen > 4 || at + 1 + lenOfLen > limit || b[at + 1] === 0) return undefined;
    len = 0;
    for (let i = 0; i < lenOfLen; i++) len = len * 256 + b[at + 1 + i]!;
    if (len <= 55) return undefined;
    start = at + 1 + lenOfLen;
  }
  const end = start + len;
  if (end > limit) return undefined;
  return { list, at, start, end };
}

/** The items of a list's payload, each canonical, filling it exactly; undefined otherwise. */
function itemsOf(b: Uint8Array, list: Item): Item[] | undefined {
  const out: Item[] = [];
  for (let at = list.start; at < list.end; ) {
    const item = readItem(b, at, list.end);
    if (!item) return undefined;
    out.push(item);
    at = item.end;
  }
  return out;
}

/** A whole input that is one list, with nothing after it. */
function topList(b: Uint8Array, from: number): Item[] | undefined {
  const top = readItem(b, from, b.length);
  if (!top?.list || top.end !== b.length) return undefined;
  return itemsOf(b, top);
}

const bytesOf = (b: Uint8Array, item: Item) => b.slice(item.start, item.end);

/** An unsigned integer field: bytes without leading zeroes (empty is zero), at most `maxBytes`. */
function uint(b: Uint8Array, item: Item, maxBytes: number): bigint | undefined {
  if (item.list) return undefined;
  const n = item.end - item.start;
  if (n === 0) return 0n;
  if (n > maxBytes || b[item.start] === 0) return undefined;
  if (n <= 6) {
    let v = 0;
    for (let i = item.start; i < item.end; i++) v = v * 256 + b[i]!;
    return BigInt(v);
  }
  return BigInt(`0x${Buffer.from(b.buffer, b.byteOffset + item.start, n).toString("hex")}`);
}

/** What the constructors check against the Common, once per Common. */
interface Rules {
  spuriousDragon: boolean;
  eip1559: boolean;
  eip2930: boolean;
  /** EIP-7825's cap on a transaction's gas limit, when it applies. */
  maxGasLimit?: bigint;
  /** EIP-3860's cap on a creation's init code, when it applies. */
  maxInitCodeSize?: bigint;
}

const rulesByCommon = new WeakMap<Common, Rules>();

function rulesOf(common: Common): Rules {
  let rules = rulesByCommon.get(common);
  if (!rules) {
    rules = {
      spuriousDragon: common.gteHardfork("spuriousDragon"),
      eip1559: common.isActivatedEIP(1559),
      eip2930: common.isActivatedEIP(2930),
      ...(common.isActivatedEIP(7825) && !common.isActivatedEIP(8037)
        ? { maxGasLimit: common.param("maxTransactionGasLimit") }
        : {}),
      ...(common.isActivatedEIP(3860) && common.param("maxInitCodeSize")
        ? { maxInitCodeSize: common.param("maxInitCodeSize") }
        : {}),
    };
    rulesByCommon.set(common, rules);
  }
  return rules;
}

/** The fields every type shares, read and checked as ethereumjs's shared constructor does. */
interface Shared {
  nonce: bigint;
  gasLimit: bigint;
  to: Address | undefined;
  value: bigint;
  data: Uint8Array;
  r: bigint;
  s: bigint;
}

function shared(
  b: Uint8Array,
  rules: Rules,
  f: { nonce: Item; gasLimit: Item; to: Item; value: Item; data: Item; r: Item; s: Item },
): Shared | undefined {
  // EIP-2681: a nonce below 2^64 - 1; gas limits up to 2^64 - 1; value, r and s within 256 bits.
  const nonce = uint(b, f.nonce, 8);
  const gasLimit = uint(b, f.gasLimit, 8);
  const value = uint(b, f.value, 32);
  const r = uint(b, f.r, 32);
  const s = uint(b, f.s, 32);
  if (
    nonce === undefined ||
    gasLimit === undefined ||
    value === undefined ||
    r === undefined ||
    s === undefined
  )
    return undefined;
  if (nonce >= MAX_UINT64 || gasLimit > MAX_UINT64 || value > MAX_INTEGER) return undefined;
  // Unsigned (empty r or s) is ethereumjs's to refuse; a high s too (EIP-2), with its message.
  if (r === 0n && f.r.end === f.r.start) return undefined;
  if (s === 0n && f.s.end === f.s.start) return undefined;
  if (s > SECP256K1_ORDER_DIV_2) return undefined;
  if (f.to.list || f.data.list) return undefined;
  const toLength = f.to.end - f.to.start;
  if (toLength !== 0 && toLength !== 20) return undefined;
  if (rules.maxGasLimit !== undefined && gasLimit > rules.maxGasLimit) return undefined;
  const data = bytesOf(b, f.data);
  if (toLength === 0 && rules.maxInitCodeSize !== undefined && BigInt(data.length) > rules.maxInitCodeSize)
    return undefined;
  return {
    nonce,
    gasLimit,
    to: toLength === 0 ? undefined : new Address(bytesOf(b, f.to)),
    value,
    data,
    r,
    s,
  };
}

/** An access list in its bytes form: [[address (20 bytes), [slot (32 bytes)...]]...]. */
function accessList(b: Uint8Array, item: Item): Array<[Uint8Array, Uint8Array[]]> | undefined {
  if (!item.list) return undefined;
  const entries = itemsOf(b, item);
  if (!entries) return undefined;
  const out: Array<[Uint8Array, Uint8Array[]]> = [];
  for (const entry of entries) {
    const pair = entry.list ? itemsOf(b, entry) : undefined;
    if (pair?.length !== 2) return undefined;
    const [address, slots] = pair as [Item, Item];
    if (address.list || address.end - address.start !== 20 || !slots.list) return undefined;
    const keys = itemsOf(b, slots);
    if (!keys) return undefined;
    const list: Uint8Array[] = [];
    for (const key of keys) {
      if (key.list || key.end - key.start !== 32) return undefined;
      list.push(bytesOf(b, key));
    }
    out.push([bytesOf(b, address), list]);
  }
  return out;
}

/** An RLP list header for a payload of `length` bytes. */
function listHeader(length: number): number[] {
  if (length <= 55) return [0xc0 + length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return [0xf7 + bytes.length, ...bytes];
}

/** keccak-256 of `prefix` (a type byte, or nothing) || RLP list of `payload` || `tail`. */
function hashList(prefix: number[], payload: Uint8Array, tail: Uint8Array): Uint8Array {
  const header = listHeader(payload.length + tail.length);
  const out = new Uint8Array(prefix.length + header.length + payload.length + tail.length);
  out.set(prefix, 0);
  out.set(header, prefix.length);
  out.set(payload, prefix.length + header.length);
  out.set(tail, prefix.length + header.length + payload.length);
  return keccak256(out);
}

/** RLP of an unsigned integer (the chain id in EIP-155's signing message). */
function encodeUint(v: bigint): Uint8Array {
  if (v === 0n) return Uint8Array.of(0x80);
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const bytes = Buffer.from(hex, "hex");
  if (bytes.length === 1 && bytes[0]! < 0x80) return Uint8Array.of(bytes[0]!);
  return Uint8Array.from([0x80 + bytes.length, ...bytes]);
}

/**
 * Sets the instance up as ethereumjs's constructor leaves it (same fields, frozen), with the hash
 * and, when the signature recovers, the sender's public key in its cache.
 */
function finish<T extends TypedTransaction>(
  tx: T,
  common: Common,
  signature: { hash: Uint8Array; r: Uint8Array; s: Uint8Array; chainId: bigint | undefined },
  hash: Uint8Array,
): T {
  const t = tx as unknown as { cache: Record<string, unknown>; v: bigint };
  t.cache.hash = hash;
  const recover = common.customCrypto.ecrecover;
  if (recover) {
    try {
      // r and s as received: without leading zeroes, as ethereumjs hands them over.
      t.cache.senderPubKey = recover(signature.hash, t.v, signature.r, signature.s, signature.chainId);
    } catch {
      // No key recovers: ethereumjs's own getSenderPublicKey says so, as before, when asked.
    }
  }
  return Object.freeze(tx);
}

/** The fields `sharedConstructor` sets, in its order. */
function assignShared(
  tx: Record<string, unknown>,
  common: Common,
  opts: { common: Common },
  f: Shared,
): void {
  tx.common = common.copy();
  tx.txOptions = opts;
  tx.to = f.to;
  tx.nonce = f.nonce;
  tx.gasLimit = f.gasLimit;
  tx.value = f.value;
  tx.data = f.data;
}

function legacy(b: Uint8Array, common: Common, opts: { common: Common }, rules: Rules): LegacyTx | undefined {
  const items = topList(b, 0);
  if (items?.length !== 9) return undefined;
  const [nonce, gasPriceItem, gasLimit, to, value, data, vItem, r, s] = items as [
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
  ];
  const fields = shared(b, rules, { nonce, gasLimit, to, value, data, r, s });
  const gasPrice = uint(b, gasPriceItem, 32);
  const v = uint(b, vItem, 32);
  if (!fields || gasPrice === undefined || v === undefined || !rules.spuriousDragon) return undefined;
  // Only EIP-155's v for this chain (pre-EIP-155 transactions are ethereumjs's to judge).
  const chainId = common.chainId();
  if (v !== chainId * 2n + 35n && v !== chainId * 2n + 36n) return undefined;
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  if (gasPrice * fields.gasLimit > MAX_INTEGER) return undefined;
  const tx = Object.create(LegacyTx.prototype) as Record<string, unknown>;
  tx.type = 0;
  tx.cache = {};
  tx.activeCapabilities = [Capability.EIP155ReplayProtection];
  assignShared(tx, common, opts, fields);
  tx.v = v;
  tx.r = fields.r;
  tx.s = fields.s;
  tx.gasPrice = gasPrice;
  tx.keccakFunction = common.customCrypto.keccak256 ?? keccak_256;
  // EIP-155's signing message: the first six fields, then the chain id, 0 and 0.
  const six = b.subarray(nonce.at, data.end);
  const tail = new Uint8Array([...encodeUint(chainId), 0x80, 0x80]);
  const signature = { hash: hashList([], six, tail), r: bytesOf(b, r), s: bytesOf(b, s), chainId };
  return finish(tx as unknown as LegacyTx, common, signature, keccak256(b));
}

function typed(
  b: Uint8Array,
  common: Common,
  opts: { common: Common },
  rules: Rules,
): AccessList2930Tx | FeeMarket1559Tx | undefined {
  const type = b[0]!;
  const items = topList(b, 1);
  const count = type === 1 ? 11 : 12;
  if (!items || items.length !== count) return undefined;
  const chainIdItem = items[0]!;
  const chainId = uint(b, chainIdItem, 32);
  // ethereumjs reads the chain id without checking its leading zeroes: such bytes are its to take.
  if (chainId === undefined || chainId !== common.chainId()) return undefined;
  const at = type === 1 ? 2 : 3;
  const [gasLimit, to, value, data, listItem, vItem, r, s] = items.slice(at + 1) as Item[] as [
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
    Item,
  ];
  const fields = shared(b, rules, { nonce: items[1]!, gasLimit, to, value, data, r, s });
  const list = accessList(b, listItem);
  // EIP-2718's y-parity: 0 (empty) or 1.
  const v = uint(b, vItem, 1);
  if (!fields || !list || v === undefined || v > 1n) return undefined;
  let tx: Record<string, unknown>;
  if (type === 1) {
    const gasPrice = uint(b, items[2]!, 32);
    if (!rules.eip2930 || gasPrice === undefined || gasPrice * fields.gasLimit > MAX_INTEGER)
      return undefined;
    tx = Object.create(AccessList2930Tx.prototype) as Record<string, unknown>;
    tx.type = 1;
    tx.cache = {};
    tx.activeCapabilities = [Capability.EIP2718TypedTransaction, Capability.EIP2930AccessLists];
    assignShared(tx, common, opts, fields);
    tx.v = v;
    tx.r = fields.r;
    tx.s = fields.s;
    tx.chainId = chainId;
    tx.accessList = list;
    tx.gasPrice = gasPrice;
  } else {
    const maxPriorityFeePerGas = uint(b, items[2]!, 32);
    const maxFeePerGas = uint(b, items[3]!, 32);
    if (!rules.eip1559 || maxPriorityFeePerGas === undefined || maxFeePerGas === undefined) return undefined;
    if (fields.gasLimit * maxFeePerGas > MAX_INTEGER || maxFeePerGas < maxPriorityFeePerGas) return undefined;
    tx = Object.create(FeeMarket1559Tx.prototype) as Record<string, unknown>;
    tx.type = 2;
    tx.cache = {};
    tx.activeCapabilities = [
      Capability.EIP1559FeeMarket,
      Capability.EIP2718TypedTransaction,
      Capability.EIP2930AccessLists,
    ];
    assignShared(tx, common, opts, fields);
    tx.v = v;
    tx.r = fields.r;
    tx.s = fields.s;
    tx.chainId = chainId;
    tx.accessList = list;
    tx.maxFeePerGas = maxFeePerGas;
    tx.maxPriorityFeePerGas = maxPriorityFeePerGas;
  }
  // The signing message: the type, then the list of every field but the signature's three.
  const unsigned = b.subarray(chainIdItem.at, listItem.end);
  const signature = {
    hash: hashList([type], unsigned, new Uint8Array(0)),
    r: bytesOf(b, r),
    s: bytesOf(b, s),
    chainId: undefined,
  };
  return finish(tx as unknown as AccessList2930Tx | FeeMarket1559Tx, common, signature, keccak256(b));
}

/**
 * The signed transaction in `bytes` for `common` (the shared Common of its chain, whose
 * parameters are settled: src/evm/vm.ts), as `createTxFromRLP(bytes, opts)` would build it, or
 * undefined when it is not one this decoder takes (then ask ethereumjs).
 */
export function decodeSignedTx(bytes: Uint8Array, opts: { common: Common }): TypedTransaction | undefined {
  if (bytes.length === 0) return undefined;
  const common = opts.common;
  const rules = rulesOf(common);
  const first = bytes[0]!;
  if (first >= 0xc0) return legacy(bytes, common, opts, rules);
  if (first === 1 || first === 2) return typed(bytes, common, opts, rules);
  return undefined;
}
