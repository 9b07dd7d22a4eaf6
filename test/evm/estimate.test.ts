import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";
import { estimateGas, ethCall } from "../../src/evm/call.ts";
import { getTx } from "../../src/evm/records.ts";
import { sendRawTransaction } from "../../src/evm/send.ts";
import { Store } from "../../src/kv/index.ts";
import { compile } from "./contracts.ts";

/**
 * A client estimates gas now and its transaction runs a moment later, often in the next second
 * (one block per transaction, stamped with the primary's clock). A contract that stores
 * `block.timestamp` pays a no-op SSTORE when the stored value is the estimate's timestamp and a
 * full one when the second has moved on: an estimate taken in the second of the last block must
 * still be enough. (This is what failed the viem test's Dice roll under load: the second roll
 * ran out of gas, reverted, and `lastNumber` kept the first roll's block.)
 */
const random = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)) };
const base = { chainId: 0xc0c0n, gasPrice: 0n, type: 0 };

test("a gas estimate made in the last block's second still covers a transaction run in a later second", async () => {
  const dice = compile().Dice!;
  const abi = new Interface(dice.abi as never);
  const alice = new Wallet(Wallet.createRandom().privateKey);
  const bound = new Set([alice.address.toLowerCase()]);
  const store = new Store();
  // The clock the executor reads: set by the test, at a second's start.
  let clock = 1_800_000_000_000;
  const now = () => clock;
  const send = async (raw: string) => {
    const tx = store.begin();
    const hash = await sendRawTransaction(tx, raw, bound, now, random);
    assert.ok(store.commit(tx).ok);
    const kv = store.begin();
    const record = getTx(kv, hash)!;
    kv.abandon();
    return record;
  };
  const read = async (fn: string) => {
    const kv = store.begin();
    const out = await ethCall(kv, { to: address, data: abi.encodeFunctionData(fn, []) }, bound, random, now);
    kv.abandon();
    return BigInt(out);
  };
  const deployData = (await new ContractFactory(dice.abi as never, dice.bytecode).getDeployTransaction())
    .data;
  const deployed = await send(
    await alice.signTransaction({ ...base, nonce: 0, gasLimit: 5_000_000n, data: deployData }),
  );
  assert.equal(deployed.status, "0x1");
  const address = getCreateAddress({ from: alice.address, nonce: 0 });
  const roll = { from: alice.address, to: address, data: abi.encodeFunctionData("roll", []) };

  for (let nonce = 1; nonce <= 3; nonce++) {
    // The estimate is asked in the second of the block before (the last roll's, or the deploy's)...
    const kv = store.begin();
    const gas = BigInt(await estimateGas(kv, roll, bound, random, now));
    kv.abandon();
    // ...and the transaction runs in the next one.
    clock += 1000;
    const r = await send(await alice.signTransaction({ ...base, nonce, gasLimit: gas, ...roll }));
    assert.equal(r.status, "0x1", `roll ${nonce} with the estimated ${gas} gas used ${BigInt(r.gasUsed)}`);
    assert.equal(await read("lastNumber"), BigInt(r.blockNumber));
    assert.equal(await read("lastTime"), BigInt(clock / 1000));
  }
});
