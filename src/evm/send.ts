import { Capability, createTxFromRLP, type TypedTransaction } from "@ethereumjs/tx";
import { Address, createZeroAddress } from "@ethereumjs/util";
import { runTx } from "@ethereumjs/vm";
import type { Tx } from "../kv/index.ts";
import { appendBlock, blockByNumber, headNumber, hex, seal } from "./chain.ts";
import { type EvmConfig, readEvmConfig } from "./config.ts";
import { decodeSignedTx } from "./decode.ts";
import { RpcError } from "./errors.ts";
import { type PlainTxResult, runPlainTx } from "./fast/index.ts";
import { toHex } from "./hex.ts";
import { keccak256 } from "./keccak.ts";
import { getTx, putTx, type StoredTxRecord } from "./records.ts";
import { blockFor, type EvmRandom, sharedCommonFor, type VmLease, vmOver } from "./vm.ts";

const HEX = /^0x[0-9a-fA-F]+$/;

let directDecoding = process.env.COCO_EVM_DIRECT_DECODE !== "0";

/** Turns the direct decoder off (ethereumjs decodes everything) or on: for A/B measurements and tests. */
export function setDirectDecoding(on: boolean): void {
  directDecoding = on;
}

/** Decodes a signed transaction for this chain; refuses what clients would be told is invalid. */
export function decodeRawTx(raw: unknown, chainId: bigint): TypedTransaction {
  // "0x" and whole bytes of hex (a plain character class: a repeated group costs per character).
  if (typeof raw !== "string" || raw.length % 2 !== 0 || raw.length < 4 || !HEX.test(raw)) {
    throw new RpcError(-32602, "invalid params: expected a hex-encoded signed transaction");
  }
  let tx: TypedTransaction;
  // Node's own hex decoder (the string is checked above): ethereumjs's validates it again and
  // decodes in JavaScript.
  const bytes = new Uint8Array((raw.length - 2) / 2);
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).write(raw.slice(2), "hex");
  const opts = { common: sharedCommonFor(chainId) };
  try {
    // The common transactions are read directly (src/evm/decode.ts); ethereumjs takes the rest,
    // and refuses what it refuses with its own message.
    tx = (directDecoding ? decodeSignedTx(bytes, opts) : undefined) ?? createTxFromRLP(bytes, opts);
  } catch (e) {
    throw new RpcError(-32602, `invalid transaction: ${(e as Error).message}`);
  }
  if (!tx.isSigned()) throw new RpcError(-32000, "transaction is not signed");
  if (tx.type === 3) throw new RpcError(-32000, "blob transactions are not supported");
  // A pre-EIP-155 legacy transaction could be replayed on any chain: refused.
  if (tx.type === 0 && !tx.supports(Capability.EIP155ReplayProtection)) {
    throw new RpcError(-32000, "only replay-protected transactions (EIP-155) are accepted");
  }
  return tx;
}

/**
 * Runs one signed Ethereum transaction in the Coco transaction `kv`: checks the sender is bound
 * to the caller and the nonce is next, executes, and records state, receipt and block. A
 * transaction the EVM reverts is still recorded (status 0, nonce used), as on Ethereum; one that
 * is invalid (nonce, funds, gas limit) writes nothing and is answered with the error.
 */
export async function sendRawTransaction(
  kv: Tx,
  raw: unknown,
  bound: ReadonlySet<string>,
  now: () => number,
  random: EvmRandom,
): Promise<string> {
  const config = readEvmConfig(kv);
  const tx = decodeRawTx(raw, config.chainId);
  const hash = toHex(tx.hash());
  if (getTx(kv, hash)) throw new RpcError(-32000, "already known");
  // The address is the last 20 bytes of the public key's keccak-256: hashed here natively, where
  // ethereumjs's getSenderAddress would hash in JavaScript (@noble/hashes).
  const from = new Address(keccak256(tx.getSenderPublicKey()).subarray(12));
  const fromHex = toHex(from.bytes);
  if (!bound.has(fromHex)) {
    throw new RpcError(-32000, `sender ${fromHex} is not an Ethereum account bound to the calling Coco user`);
  }
  const lease = await vmOver(kv, config, random);
  try {
    return await runSigned(kv, raw as string, tx, from, hash, fromHex, config, lease, now);
  } finally {
    lease.release();
  }
}

async function runSigned(
  kv: Tx,
  raw: string,
  tx: TypedTransaction,
  from: Address,
  hash: string,
  fromHex: string,
  config: EvmConfig,
  { vm, state, common }: VmLease,
  now: () => number,
): Promise<string> {
  const account = await state.getAccount(from);
  const expected = account?.nonce ?? 0n;
  if (tx.nonce < expected) {
    throw new RpcError(-32000, `nonce too low: address ${fromHex}, tx: ${tx.nonce} state: ${expected}`);
  }
  if (tx.nonce > expected) {
    throw new RpcError(-32000, `nonce too high: address ${fromHex}, tx: ${tx.nonce} state: ${expected}`);
  }
  const gasPrice = effectiveGasPrice(tx, config.gasPrice);
  if (gasPrice < config.gasPrice) {
    throw new RpcError(
      -32000,
      `transaction underpriced: gas price ${gasPrice} is below the network's ${config.gasPrice}`,
    );
  }
  if (tx.gasLimit > config.blockGasLimit) throw new RpcError(-32000, "exceeds block gas limit");
  const parent = blockByNumber(kv, headNumber(kv), config.blockGasLimit)!;
  const number = BigInt(parent.number) + 1n;
  const timestamp = bigMax(BigInt(parent.timestamp), BigInt(Math.floor(now() / 1000)));
  const coinbase = createZeroAddress();
  const context = { number, timestamp, baseFee: config.gasPrice, gasLimit: config.blockGasLimit, coinbase };
  // A plain call runs on the fast transaction path; anything it leaves, before any side effect,
  // runs in ethereumjs's runTx (docs/ethereum.md, "How a transaction executes").
  let result: PlainTxResult | Awaited<ReturnType<typeof runTx>> | undefined = runPlainTx(
    vm,
    state,
    common,
    tx,
    from,
    context,
  );
  if (!result) {
    const block = blockFor(config, number, timestamp, common, coinbase);
    // The sender is recovered once: ethereumjs caches the public key but hashes it into an
    // address on every call, so runTx sees a transaction that answers the address known here.
    const runnable = Object.create(tx, { getSenderAddress: { value: () => from } }) as TypedTransaction;
    try {
      result = await runTx(vm, { tx: runnable, block, skipHardForkValidation: true });
    } catch (e) {
      throw new RpcError(-32000, invalidTxMessage((e as Error).message));
    }
  }
  state.flush();
  const gasUsed = result.totalGasSpent;
  const logs = (result.execResult.logs ?? []).map(([address, topics, data], i) => ({
    address: toHex(address),
    topics: topics.map((t) => toHex(t)),
    data: toHex(data),
    logIndex: hex(i),
  }));
  const bloom = toHex(result.bloom.bitvector);
  const sealed = seal({
    number: hex(number),
    parentHash: parent.hash,
    timestamp: hex(timestamp),
    gasLimit: hex(config.blockGasLimit),
    gasUsed: hex(gasUsed),
    baseFeePerGas: hex(config.gasPrice),
    logsBloom: bloom,
    transactions: [hash],
  });
  const failed = result.execResult.exceptionError !== undefined;
  // The record and the block leave out the bloom and the transaction's JSON: both are derived
  // from the logs and the signed bytes when read (records.ts, chain.ts).
  const record: StoredTxRecord = {
    hash,
    raw,
    from: fromHex,
    to: tx.to ? toHex(tx.to.bytes) : null,
    type: hex(tx.type),
    nonce: hex(tx.nonce),
    blockNumber: sealed.number,
    blockHash: sealed.hash,
    status: failed ? "0x0" : "0x1",
    gasUsed: hex(gasUsed),
    effectiveGasPrice: hex(gasPrice),
    contractAddress: !failed && result.createdAddress ? toHex(result.createdAddress.bytes) : null,
    logs,
    output: toHex(result.execResult.returnValue),
  };
  appendBlock(kv, sealed, { derivedBloom: true });
  putTx(kv, record);
  return hash;
}

export function effectiveGasPrice(tx: TypedTransaction, baseFee: bigint): bigint {
  if ("maxFeePerGas" in tx) {
    const t = tx as unknown as { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };
    return bigMin(t.maxFeePerGas, baseFee + t.maxPriorityFeePerGas);
  }
  return (tx as unknown as { gasPrice: bigint }).gasPrice;
}

/** The VM's messages carry a dump of the transaction; clients match on the first words. */
function invalidTxMessage(message: string): string {
  const m = message.split(" -> ")[0]!.split(" (")[0]!;
  if (/funds|balance/i.test(m)) return `insufficient funds for gas * price + value: ${m}`;
  if (/base fee|maxFeePerGas/i.test(m)) return `max fee per gas less than block base fee: ${m}`;
  if (/gas limit/i.test(m) && /intrinsic|too low/i.test(m)) return `intrinsic gas too low: ${m}`;
  return m;
}

function bigMax(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
