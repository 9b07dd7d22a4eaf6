import assert from "node:assert/strict";
import { test } from "node:test";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";
import { ethCall } from "../../src/evm/call.ts";
import { fastPathStats, setFastPath } from "../../src/evm/fast/index.ts";
import { getTx } from "../../src/evm/records.ts";
import { sendRawTransaction } from "../../src/evm/send.ts";
import { Store } from "../../src/kv/index.ts";
import { compile } from "./contracts.ts";
import { writesOf } from "./differential.ts";

/**
 * The OpenZeppelin ERC-20 through `sendRawTransaction`, the same signed transactions into two
 * stores: one with the fast interpreter, one with ethereumjs alone. Each Coco transaction must
 * write the same bytes (state, receipt record with status, gas, logs and revert data, block) and
 * each answer (hash or error) must be the same; views (`eth_call`) must answer the same, reverts
 * with reasons included.
 */

const random = { randomBytes: (n: number) => new Uint8Array(n).fill(1) };
const base = { chainId: 0xc0c0n, gasPrice: 0n, type: 2, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n };
const now = () => 1_700_000_000_000;

test("ERC-20 transfer, approve, transferFrom, reverts and out of gas: identical with and without the fast path", async () => {
  const token = compile().PrivateToken!;
  const erc20 = new Interface(token.abi as never);
  const [alice, bob, carol] = [0, 1, 2].map(() => new Wallet(Wallet.createRandom().privateKey)) as [
    Wallet,
    Wallet,
    Wallet,
  ];
  const bound = new Set([alice, bob, carol].map((w) => w.address.toLowerCase()));
  const stores = { fast: new Store(), slow: new Store() };
  const nonces = new Map<Wallet, number>();

  /** Sends one signed transaction to both stores; answers the receipt record (the same in both). */
  const send = async (from: Wallet, fields: Record<string, unknown>) => {
    const nonce = nonces.get(from) ?? 0;
    const raw = await from.signTransaction({ ...base, nonce, ...fields });
    const outcome: Record<string, unknown> = {};
    for (const mode of ["fast", "slow"] as const) {
      setFastPath(mode === "fast");
      const kv = stores[mode].begin();
      try {
        const hash = await sendRawTransaction(kv, raw, bound, now, random);
        outcome[mode] = { hash, writes: writesOf(kv) };
        assert.ok(stores[mode].commit(kv).ok);
      } catch (e) {
        outcome[mode] = { error: (e as Error).message };
        kv.abandon();
      } finally {
        setFastPath(true);
      }
    }
    assert.deepEqual(outcome.fast, outcome.slow);
    const answer = outcome.fast as { hash?: string; error?: string };
    if (answer.error !== undefined) return { error: answer.error };
    nonces.set(from, nonce + 1);
    const kv = stores.fast.begin();
    const record = getTx(kv, answer.hash!)!;
    kv.abandon();
    return record;
  };
  const view = async (from: Wallet, data: string) => {
    const out: unknown[] = [];
    for (const mode of ["fast", "slow"] as const) {
      setFastPath(mode === "fast");
      const kv = stores[mode].begin();
      try {
        out.push({
          value: await ethCall(kv, { from: from.address, to: tokenAddress, data }, bound, random, now),
        });
      } catch (e) {
        const err = e as { message: string; code?: number; data?: unknown };
        out.push({ error: err.message, code: err.code, data: err.data });
      } finally {
        setFastPath(true);
        kv.abandon();
      }
    }
    assert.deepEqual(out[0], out[1]);
    return out[0] as { value?: string; error?: string };
  };
  const call = (to: string, fn: string, args: unknown[], gasLimit = 100_000n) => ({
    to,
    gasLimit,
    data: erc20.encodeFunctionData(fn, args),
  });

  const factory = new ContractFactory(token.abi as never, token.bytecode);
  const deployed = await send(alice, {
    gasLimit: 5_000_000n,
    data: (await factory.getDeployTransaction(1_000_000n)).data,
  });
  assert.equal((deployed as { status: string }).status, "0x1");
  const tokenAddress = getCreateAddress({ from: alice.address, nonce: 0 });

  const fastBefore = fastPathStats.fast;
  const statuses: string[] = [];
  const steps: Array<[Wallet, ReturnType<typeof call>]> = [
    [alice, call(tokenAddress, "transfer", [bob.address, 1000n])], // fresh slot for bob
    [alice, call(tokenAddress, "transfer", [bob.address, 1000n])], // existing slots
    [alice, call(tokenAddress, "transfer", [alice.address, 10n])], // to self: dirty write back
    [alice, call(tokenAddress, "transfer", [bob.address, 0n])], // zero amount: no-op stores
    [bob, call(tokenAddress, "transfer", [carol.address, 2000n])], // empties bob: clears a slot
    [carol, call(tokenAddress, "approve", [bob.address, 500n])],
    [bob, call(tokenAddress, "transferFrom", [carol.address, alice.address, 200n])],
    [bob, call(tokenAddress, "transferFrom", [carol.address, alice.address, 300n])], // allowance to 0
    [bob, call(tokenAddress, "transferFrom", [carol.address, alice.address, 1n])], // no allowance: reverts
    [bob, call(tokenAddress, "transfer", [carol.address, 1n])], // no balance: reverts with the error
    [carol, call(tokenAddress, "transfer", [bob.address, 1n], 23_000n)], // out of gas in the frame
    [carol, call(tokenAddress, "transfer", [bob.address, 1n], 30_000n)], // out of gas at a cold SSTORE
    [carol, call(tokenAddress, "approve", [bob.address, 2n ** 256n - 1n])], // infinite allowance
    [bob, call(tokenAddress, "transferFrom", [carol.address, bob.address, 5n])],
    [alice, { to: tokenAddress, gasLimit: 100_000n, data: "0xdeadbeef" }], // no such function
    [alice, { to: carol.address, gasLimit: 100_000n, data: "0x" }], // to an account without code
  ];
  for (const [from, fields] of steps) {
    const r = (await send(from, fields)) as { status?: string; error?: string };
    statuses.push(r.status ?? `error: ${r.error}`);
  }
  assert.deepEqual(statuses, [
    "0x1",
    "0x1",
    "0x1",
    "0x1",
    "0x1",
    "0x1",
    "0x1",
    "0x1",
    "0x0",
    "0x0",
    "0x0",
    "0x0",
    "0x1",
    "0x1",
    "0x0",
    "0x1",
  ]);
  assert.ok(fastPathStats.fast - fastBefore >= 10, "the token's frames ran on the fast path");

  // Views, reverts with reasons included (the token's balanceOf refuses other callers).
  assert.equal(
    BigInt((await view(alice, erc20.encodeFunctionData("balanceOf", [alice.address]))).value!),
    998_500n,
  );
  const refused = await view(bob, erc20.encodeFunctionData("balanceOf", [alice.address]));
  assert.match(refused.error!, /balance is private/);
  await view(carol, erc20.encodeFunctionData("allowance", [carol.address, bob.address]));
  await view(carol, erc20.encodeFunctionData("totalSupply", []));
  await view(carol, erc20.encodeFunctionData("name", []));
});
