import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";
import { ethCall } from "../../src/evm/call.ts";
import { setFastPath } from "../../src/evm/fast/index.ts";
import { JUMP_ANALYSIS_CACHED, jumpAnalysisHits } from "../../src/evm/jumps.ts";
import { getTx } from "../../src/evm/records.ts";
import { sendRawTransaction } from "../../src/evm/send.ts";
import { Store } from "../../src/kv/index.ts";
import { compile } from "./contracts.ts";

/**
 * The executor's shortcuts (jump analysis cached per code, code cached per hash, native keccak,
 * EIP lookups by set) change no outcome: an ERC-20 run through `sendRawTransaction` over a KV
 * store, one KV transaction per Ethereum transaction, ends with the balances, statuses and gas
 * that the token's rules give, and a jump into a non-JUMPDEST still fails.
 */
const random = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)) };
const base = { chainId: 0xc0c0n, gasPrice: 0n, type: 0 };

test("ERC-20 transfers come out the same with the executor's caches, which are in use", async (t) => {
  assert.ok(JUMP_ANALYSIS_CACHED, "the jump-analysis cache is installed");
  // The caches serve ethereumjs's interpreter: the fast path (test/evm/fast-*.test.ts) is off here.
  setFastPath(false);
  t.after(() => setFastPath(true));
  const token = compile().PrivateToken!;
  const erc20 = new Interface(token.abi as never);
  const alice = new Wallet(Wallet.createRandom().privateKey);
  const bob = new Wallet(Wallet.createRandom().privateKey);
  const bound = new Set([alice.address, bob.address].map((a) => a.toLowerCase()));
  const store = new Store();
  const send = async (raw: string) => {
    const tx = store.begin();
    const hash = await sendRawTransaction(tx, raw, bound, Date.now, random);
    assert.ok(store.commit(tx).ok);
    const kv = store.begin();
    const record = getTx(kv, hash)!;
    kv.abandon();
    return record;
  };
  const balance = async (who: Wallet) => {
    const kv = store.begin();
    const data = erc20.encodeFunctionData("balanceOf", [who.address]);
    const out = await ethCall(kv, { from: who.address, to: tokenAddress, data }, bound, random, Date.now);
    kv.abandon();
    return BigInt(out);
  };
  const factory = new ContractFactory(token.abi as never, token.bytecode);
  const deployData = (await factory.getDeployTransaction(1000n)).data;
  const deployed = await send(
    await alice.signTransaction({ ...base, nonce: 0, gasLimit: 5_000_000n, data: deployData }),
  );
  assert.equal(deployed.status, "0x1");
  const tokenAddress = getCreateAddress({ from: alice.address, nonce: 0 });
  assert.equal(deployed.contractAddress, tokenAddress.toLowerCase());
  const transfer = (nonce: number, amount: bigint) =>
    alice.signTransaction({
      ...base,
      nonce,
      to: tokenAddress,
      gasLimit: 100_000n,
      data: erc20.encodeFunctionData("transfer", [bob.address, amount]),
    });
  const hitsBefore = jumpAnalysisHits();
  const gas: string[] = [];
  for (let nonce = 1; nonce <= 3; nonce++) {
    const r = await send(await transfer(nonce, 100n));
    assert.equal(r.status, "0x1");
    assert.equal(r.from, alice.address.toLowerCase());
    assert.equal(r.logs.length, 1, "one Transfer event");
    gas.push(r.gasUsed);
  }
  // The second and third transfers re-use the token's analysis.
  assert.ok(jumpAnalysisHits() >= hitsBefore + 2, `${jumpAnalysisHits()} hits after ${hitsBefore}`);
  // Gas is the token's rule, not the cache's: the first transfer to Bob pays for a fresh slot.
  assert.ok(BigInt(gas[0]!) > BigInt(gas[1]!));
  assert.equal(gas[1], gas[2]);
  assert.equal(await balance(alice), 700n);
  assert.equal(await balance(bob), 300n);
  // A transfer beyond the balance reverts (recorded, status 0) and moves nothing.
  const reverted = await send(await transfer(4, 10_000n));
  assert.equal(reverted.status, "0x0");
  assert.equal(await balance(alice), 700n);
  // A contract whose only jump lands on a PUSH immediate that looks like a JUMPDEST (runtime code
  // PUSH1 0x5b, PUSH1 1, JUMP: pc 1 is an immediate) fails on every call, the cached analysis
  // included. Its init code returns those 5 bytes.
  const trap = await send(
    await bob.signTransaction({
      ...base,
      nonce: 0,
      gasLimit: 100_000n,
      data: "0x64605b6001566000526005601bf3",
    }),
  );
  assert.equal(trap.status, "0x1");
  const trapAddress = getCreateAddress({ from: bob.address, nonce: 0 });
  const hitsBeforeTrap = jumpAnalysisHits();
  for (let nonce = 1; nonce <= 2; nonce++) {
    const r = await send(await bob.signTransaction({ ...base, nonce, gasLimit: 100_000n, to: trapAddress }));
    assert.equal(r.status, "0x0");
  }
  assert.ok(jumpAnalysisHits() >= hitsBeforeTrap + 1);
});
