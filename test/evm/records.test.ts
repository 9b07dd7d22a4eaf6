import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { createTxFromRLP } from "@ethereumjs/tx";
import { hexToBytes } from "@ethereumjs/util";
import { Bloom } from "@ethereumjs/vm";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";
import { blockByHash, blockByNumber, seal } from "../../src/evm/chain.ts";
import { EVM_MAPS, u64Key } from "../../src/evm/maps.ts";
import { getTx, putTx, type StoredTx } from "../../src/evm/records.ts";
import { sendRawTransaction } from "../../src/evm/send.ts";
import { sharedCommonFor } from "../../src/evm/vm.ts";
import { Store } from "../../src/kv/index.ts";
import { compile } from "./contracts.ts";

const CHAIN = 0xc0c0n;
const GAS_LIMIT = 30_000_000n;
const decoder = new TextDecoder();

/** The bloom of the logs by ethereumjs's own Bloom (its JavaScript keccak): what receipts carried. */
function expectedBloom(logs: StoredTx["logs"]): string {
  const bloom = new Bloom();
  for (const l of logs) {
    bloom.add(hexToBytes(l.address as `0x${string}`));
    for (const t of l.topics) bloom.add(hexToBytes(t as `0x${string}`));
  }
  return `0x${Buffer.from(bloom.bitvector).toString("hex")}`;
}

test("a public transaction's record and block leave out the JSON and the bloom, and read back whole", async () => {
  const store = new Store();
  const alice = new Wallet(Wallet.createRandom().privateKey);
  const bob = Wallet.createRandom();
  const bound = new Set([alice.address.toLowerCase()]);
  const random = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)) };
  const send = async (raw: string) => {
    const tx = store.begin();
    const hash = await sendRawTransaction(tx, raw, bound, Date.now, random);
    assert.ok(store.commit(tx).ok);
    return hash;
  };
  const token = compile().PrivateToken!;
  const data = (await new ContractFactory(token.abi as never, token.bytecode).getDeployTransaction(1_000n))
    .data;
  const base = { chainId: CHAIN, gasLimit: 5_000_000n };
  const sent = [await alice.signTransaction({ ...base, nonce: 0, gasPrice: 0n, type: 0, data })];
  const address = getCreateAddress({ from: alice.address, nonce: 0 });
  const transfer = new Interface(token.abi as never).encodeFunctionData("transfer", [bob.address, 7n]);
  // The three transaction types, each a transfer that logs (a bloom with bits set).
  sent.push(
    await alice.signTransaction({ ...base, nonce: 1, gasPrice: 0n, type: 0, to: address, data: transfer }),
  );
  sent.push(
    await alice.signTransaction({
      ...base,
      nonce: 2,
      gasPrice: 0n,
      type: 1,
      to: address,
      data: transfer,
      accessList: [],
    }),
  );
  sent.push(
    await alice.signTransaction({
      ...base,
      nonce: 3,
      type: 2,
      maxFeePerGas: 0n,
      maxPriorityFeePerGas: 0n,
      to: address,
      data: transfer,
    }),
  );
  for (const raw of sent) {
    const hash = await send(raw);
    const tx = store.begin();
    const stored = JSON.parse(decoder.decode(tx.map(EVM_MAPS.txs).get(hexToBytes(hash as `0x${string}`))!));
    assert.equal(stored.json, undefined, "the transaction's JSON is not stored");
    assert.equal(stored.logsBloom, undefined, "the bloom is not stored");
    const record = getTx(tx, hash)!;
    const signed = createTxFromRLP(hexToBytes(raw as `0x${string}`), { common: sharedCommonFor(CHAIN) });
    assert.deepEqual(record.json, signed.toJSON(), "the JSON is the signed transaction's");
    assert.equal(record.logsBloom, expectedBloom(record.logs));
    const n = BigInt(record.blockNumber);
    const storedBlock = JSON.parse(decoder.decode(tx.map(EVM_MAPS.blocks).get(u64Key(n))!));
    assert.equal(storedBlock.logsBloom, undefined, "the block's bloom is not stored");
    const block = blockByNumber(tx, n, GAS_LIMIT)!;
    assert.equal(block.logsBloom, record.logsBloom, "one transaction per block: its bloom");
    // The derived bloom is the one the block's hash was sealed over.
    const { hash: blockHash, ...fields } = block;
    assert.equal(seal(fields).hash, blockHash);
    assert.deepEqual({ ...blockByHash(tx, blockHash, GAS_LIMIT) }, { ...block });
    if (raw !== sent[0]) assert.notEqual(BigInt(record.logsBloom), 0n, "a transfer's bloom has bits set");
  }

  // A record of the older shape (JSON and bloom stored) is read as stored.
  const last = await send(
    await alice.signTransaction({ ...base, nonce: 4, gasPrice: 0n, type: 0, to: address, data: transfer }),
  );
  const old = store.begin();
  const record = getTx(old, last)!;
  const whole = { ...record, json: { ...record.json, marker: "stored" }, logsBloom: `0x${"00".repeat(256)}` };
  putTx(old, whole);
  assert.ok(store.commit(old).ok);
  const again = getTx(store.begin(), record.hash)!;
  assert.equal(again.json.marker, "stored");
  assert.equal(again.logsBloom, `0x${"00".repeat(256)}`);
});
