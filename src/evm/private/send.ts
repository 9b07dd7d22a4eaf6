import { RLP } from "@ethereumjs/rlp";
import { createLegacyTxFromBytesArray, type TypedTransaction } from "@ethereumjs/tx";
import { Account, type Address, bytesToHex, createAccountFromRLP, hexToBytes } from "@ethereumjs/util";
import { runTx } from "@ethereumjs/vm";
import type { Tx } from "../../kv/index.ts";
import { appendBlock, blockByNumber, headNumber, hex, type StoredBlock, seal } from "../chain.ts";
import { readEvmConfig } from "../config.ts";
import { RpcError } from "../errors.ts";
import { keccak256 } from "../keccak.ts";
import { EVM_MAPS } from "../maps.ts";
import { getTx, putTx, type StoredTx } from "../records.ts";
import { blockFor, type EvmRandom, sharedCommonFor, vmOver } from "../vm.ts";
import { contractGroup, groupIdOf, groupMaps, PRIVATE_MAPS, putGroup } from "./groups.ts";
import { boundKeys, TESSERA_KEY } from "./parties.ts";
import { readPayload } from "./payloads.ts";
import { PrivateStateManager, PublicWriteError } from "./state.ts";

const encoder = new TextEncoder();

/** Decodes a Quorum private transaction: legacy, signed with v 37/38 (27/28 + 10), data = payload key. */
export function decodePrivateTx(raw: unknown, chainId: bigint): { tx: TypedTransaction; v: number } {
  if (typeof raw !== "string" || !/^0x([0-9a-fA-F]{2})+$/.test(raw)) {
    throw new RpcError(-32602, "invalid params: expected a hex-encoded signed transaction");
  }
  let fields: Uint8Array[];
  try {
    fields = RLP.decode(hexToBytes(raw as `0x${string}`)) as Uint8Array[];
  } catch (e) {
    throw new RpcError(-32602, `invalid transaction: ${(e as Error).message}`);
  }
  if (!Array.isArray(fields) || fields.length !== 9 || fields.some((f) => !(f instanceof Uint8Array))) {
    throw new RpcError(-32602, "invalid transaction: a private transaction is a signed legacy transaction");
  }
  const v = fields[6]!.length === 1 ? fields[6]![0]! : 0;
  if (v !== 37 && v !== 38) {
    throw new RpcError(-32000, "not a private transaction: its v must be 37 or 38 (Quorum's private marker)");
  }
  const signed = [...fields];
  signed[6] = Uint8Array.of(v - 10);
  try {
    return { tx: createLegacyTxFromBytesArray(signed, { common: sharedCommonFor(chainId) }), v };
  } catch (e) {
    throw new RpcError(-32602, `invalid transaction: ${(e as Error).message}`);
  }
}

/** `privateFor` (and an optional `privateFrom`) as GoQuorum takes them. */
function parseArgs(args: unknown): { privateFor: string[]; privateFrom?: string } {
  if (typeof args !== "object" || args === null)
    throw new RpcError(-32602, "invalid params: expected {privateFor}");
  const { privateFor, privateFrom } = args as { privateFor?: unknown; privateFrom?: unknown };
  if (!Array.isArray(privateFor) || privateFor.some((k) => typeof k !== "string" || !TESSERA_KEY.test(k))) {
    throw new RpcError(-32602, "invalid params: privateFor must be an array of base64 Tessera public keys");
  }
  if (privateFrom !== undefined && (typeof privateFrom !== "string" || !TESSERA_KEY.test(privateFrom))) {
    throw new RpcError(-32602, "invalid params: privateFrom must be a base64 Tessera public key");
  }
  return { privateFor: privateFor as string[], privateFrom: privateFrom as string | undefined };
}

/** A private transaction that passed every check but the nonce: ready to run in its group. */
export interface CheckedPrivate {
  tx: TypedTransaction;
  v: number;
  raw: string;
  /** keccak-256 of the raw transaction as sent (v 37/38), as GoQuorum's hash. */
  hash: string;
  fromHex: string;
  members: string[];
  group: string;
  payload: Uint8Array;
}

/**
 * Everything `eth_sendRawPrivateTransaction` and `eth_distributePrivateTransaction` check before a
 * private transaction may run: its form, its sender bound to the caller, a stored payload of the
 * caller's that no transaction used yet, recipients governance knows, and the contract's group.
 */
export function checkPrivate(
  kv: Tx,
  raw: unknown,
  args: unknown,
  bound: ReadonlySet<string>,
  keys: Set<string>,
): CheckedPrivate {
  const config = readEvmConfig(kv);
  if (config.gasPrice !== 0n)
    throw new RpcError(-32000, "private transactions need a gas price of 0 (governance's)");
  const { tx, v } = decodePrivateTx(raw, config.chainId);
  const { privateFor, privateFrom: fromArg } = parseArgs(args);
  const hash = bytesToHex(keccak256(hexToBytes(raw as `0x${string}`)));
  if (getTx(kv, hash) || kv.map(PRIVATE_MAPS.txGroups).get(hexToBytes(hash as `0x${string}`))) {
    throw new RpcError(-32000, "already known");
  }
  const fromHex = tx.getSenderAddress().toString();
  if (!bound.has(fromHex)) {
    throw new RpcError(-32000, `sender ${fromHex} is not an Ethereum account bound to the calling Coco user`);
  }
  const stored = readPayload(kv, tx.data);
  if (!stored)
    throw new RpcError(
      -32000,
      "the data field names no stored payload (POST it to /app/tessera/storeraw first)",
    );
  if (kv.map(PRIVATE_MAPS.payloadGroups).get(tx.data) !== undefined) {
    throw new RpcError(-32000, "the payload was already used by a transaction");
  }
  const privateFrom = fromArg ?? stored.from;
  if (!keys.has(privateFrom) || stored.from !== privateFrom) {
    throw new RpcError(-32000, "privateFrom must be the calling user's key that stored the payload");
  }
  const known = boundKeys(kv);
  for (const k of privateFor) if (!known.has(k)) throw new RpcError(-32000, `unknown recipient ${k}`);
  const members = [privateFrom, ...privateFor];
  const group = groupIdOf(members);
  const to = tx.to?.toString() ?? null;
  const target = to === null ? undefined : contractGroup(kv, to);
  if (target !== undefined && target !== group) {
    throw new RpcError(-32000, "the contract is private to other parties: send with its own privateFor");
  }
  if (tx.gasLimit > config.blockGasLimit) throw new RpcError(-32000, "exceeds block gas limit");
  const payload = new Uint8Array(Buffer.from(stored.payload, "base64"));
  return { tx, v, raw: raw as string, hash, fromHex, members, group, payload };
}

/** The sender's next public nonce, checked against `nonce`. */
export function checkPublicNonce(kv: Tx, address: Address, nonce: bigint): bigint {
  const raw = kv.map(EVM_MAPS.accounts).get(address.bytes);
  const expected = raw === undefined ? 0n : createAccountFromRLP(raw).nonce;
  if (nonce !== expected) {
    throw new RpcError(
      -32000,
      `nonce too ${nonce < expected ? "low" : "high"}: address ${address.toString()}, tx: ${nonce} state: ${expected}`,
    );
  }
  return expected;
}

/**
 * The public trace of a private transaction: a plain private transaction leaves a hidden marker
 * with its own hash; a privacy marker transaction (marker.ts) is itself the public transaction.
 */
export type PublicTrace =
  | { kind: "hidden" }
  | { kind: "marker"; hash: string; raw: string; record: (block: StoredBlock) => StoredTx };

/**
 * `eth_sendRawPrivateTransaction`: runs the payload the data field names in the privacy group of
 * the sender and its recipients. The group's maps get the state, receipt and logs; public state
 * gets only the sender's spent nonce and a block holding the transaction's hash (as Quorum's
 * public chain holds the marker). A transaction that would change public state is refused.
 */
export async function sendRawPrivateTransaction(
  kv: Tx,
  raw: unknown,
  args: unknown,
  bound: ReadonlySet<string>,
  keys: Set<string>,
  now: () => number,
  random: EvmRandom,
): Promise<string> {
  const checked = checkPrivate(kv, raw, args, bound, keys);
  checkPublicNonce(kv, checked.tx.getSenderAddress(), checked.tx.nonce);
  await runPrivate(kv, checked, { kind: "hidden" }, now, random);
  return checked.hash;
}

/**
 * Runs a checked private transaction in its group and records it: the group's maps get the state,
 * receipt and logs; public state gets the sender's spent nonce and a block with the public trace.
 */
export async function runPrivate(
  kv: Tx,
  p: CheckedPrivate,
  trace: PublicTrace,
  now: () => number,
  random: EvmRandom,
): Promise<void> {
  const config = readEvmConfig(kv);
  const { tx, v, hash, group, members } = p;
  const from = tx.getSenderAddress();
  const publicRaw = kv.map(EVM_MAPS.accounts).get(from.bytes);
  const state = new PrivateStateManager(kv, group, from);
  const { vm, common, release } = await vmOver(kv, config, random, state);
  const parent = blockByNumber(kv, headNumber(kv), config.blockGasLimit)!;
  const number = BigInt(parent.number) + 1n;
  const ts = BigInt(Math.floor(now() / 1000));
  const timestamp = ts > BigInt(parent.timestamp) ? ts : BigInt(parent.timestamp);
  let result: Awaited<ReturnType<typeof runTx>>;
  let written: string[];
  try {
    // The transaction that runs: the signed one with its real data; the sender is the signer's.
    const inner = createLegacyTxFromBytesArray([...(tx.raw() as Uint8Array[]).slice(0, 5), p.payload], {
      common,
    });
    const runnable = Object.create(inner, { getSenderAddress: { value: () => from } }) as TypedTransaction;
    try {
      result = await runTx(vm, {
        tx: runnable,
        block: blockFor(config, number, timestamp, common),
        skipNonce: true,
        skipHardForkValidation: true,
      });
    } catch (e) {
      if (e instanceof PublicWriteError) throw new RpcError(-32000, e.message);
      throw new RpcError(-32000, (e as Error).message.split(" -> ")[0]!);
    }
    written = state.flush();
  } finally {
    release();
  }
  putGroup(kv, group, members);

  const failed = result.execResult.exceptionError !== undefined;
  const logs = (result.execResult.logs ?? []).map(([address, topics, data], i) => ({
    address: bytesToHex(address),
    topics: topics.map((t) => bytesToHex(t)),
    data: bytesToHex(data),
    logIndex: hex(i),
  }));
  // Public: a block with the public hash alone (no gas, no bloom: they would describe the run).
  const sealed = seal({
    number: hex(number),
    parentHash: parent.hash,
    timestamp: hex(timestamp),
    gasLimit: hex(config.blockGasLimit),
    gasUsed: "0x0",
    baseFeePerGas: hex(config.gasPrice),
    logsBloom: `0x${"00".repeat(256)}`,
    transactions: [trace.kind === "marker" ? trace.hash : hash],
  });
  const json = { ...(tx.toJSON() as Record<string, unknown>), v: hex(v) };
  const contractAddress = !failed && result.createdAddress ? result.createdAddress.toString() : null;
  const record: StoredTx = {
    hash,
    raw: p.raw,
    from: p.fromHex,
    to: tx.to?.toString() ?? null,
    type: "0x0",
    nonce: hex(tx.nonce),
    blockNumber: sealed.number,
    blockHash: sealed.hash,
    status: failed ? "0x0" : "0x1",
    gasUsed: hex(result.totalGasSpent),
    effectiveGasPrice: "0x0",
    contractAddress,
    logs,
    logsBloom: bytesToHex(result.bloom.bitvector),
    json,
    output: bytesToHex(result.execResult.returnValue),
  };
  const maps = groupMaps(group);
  const hashKey = hexToBytes(hash as `0x${string}`);
  const groupKey = hexToBytes(group as `0x${string}`);
  kv.map(maps.txs).set(hashKey, encoder.encode(JSON.stringify(record)));
  kv.map(PRIVATE_MAPS.txGroups).set(hashKey, groupKey);
  kv.map(PRIVATE_MAPS.payloadGroups).set(tx.data, groupKey);
  // Every account the run wrote (the new contract, and any it created) belongs to the group.
  for (const address of written) {
    if (address === `0x${"00".repeat(20)}` || contractGroup(kv, address) !== undefined) continue;
    kv.map(PRIVATE_MAPS.contracts).set(hexToBytes(address as `0x${string}`), groupKey);
  }
  if (trace.kind === "marker") {
    putTx(kv, trace.record(sealed));
  } else {
    // The hidden marker: the hash and block, visible to no one (privacy.party is false).
    putTx(kv, {
      ...record,
      to: null,
      gasUsed: "0x0",
      status: "0x1",
      contractAddress: null,
      logs: [],
      logsBloom: sealed.logsBloom,
      json: {},
      output: "0x",
      privacy: { group, party: false },
    });
  }
  const account = publicRaw === undefined ? new Account() : createAccountFromRLP(publicRaw);
  account.nonce += 1n;
  kv.map(EVM_MAPS.accounts).set(from.bytes, account.serialize());
  appendBlock(kv, sealed);
}
