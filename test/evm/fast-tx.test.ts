import assert from "node:assert/strict";
import { test } from "node:test";
import { Account, bigIntMin, createAddressFromString, hexToBytes, setLengthLeft } from "@ethereumjs/util";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";
import fc from "fast-check";
import { fastPathStats, setFastPath } from "../../src/evm/fast/index.ts";
import { Filters } from "../../src/evm/filters.ts";
import { answer } from "../../src/evm/jsonrpc.ts";
import { keccak256 } from "../../src/evm/keccak.ts";
import { EVM_MAPS } from "../../src/evm/maps.ts";
import { KvStateManager } from "../../src/evm/state.ts";
import { Store } from "../../src/kv/index.ts";
import { compile } from "./contracts.ts";
import { writesOf } from "./differential.ts";

/**
 * The fast transaction path (src/evm/fast/tx.ts) against ethereumjs's runTx: the same signed
 * transactions, through JSON-RPC, into two stores, one with the fast path and one without
 * (`setFastPath(false)`: ethereumjs alone). Every answer (hash or error) and every byte each Coco
 * transaction writes (accounts, storage, the receipt record, the block) must be the same, and so
 * must what the RPC reads back (receipt, transaction, balances, nonces, the block). Covered: the
 * three transaction types, base fee zero and not, priority fees, access lists, calldata costs and
 * EIP-7623's floor, refunds and their cap, value transfers (to an account, a new one, the
 * coinbase, oneself, a contract that takes it or refuses it), the fee to the coinbase, EIP-161's
 * removal of touched empty accounts, and the failing cases: nonce too low or high, funds short of
 * the value or the gas, a gas limit below intrinsic gas or the floor or above the block's, fees
 * below the base fee, reverts and out of gas.
 */

const CHAIN = 0xc0c0n;
const now = () => 1_700_000_000_000;
const host = { txIdOf: () => undefined, now, randomBytes: (n: number) => new Uint8Array(n).fill(3) };

/** A payable probe: stores value, origin, gas price and calldata word 0 (slot 1, preset: clearing
 * it refunds), logs the block number, timestamp, chain id, caller and its own address (topic: the
 * caller), and reverts when calldata word 1 is not zero. */
const PROBE_BODY = [
  ...[0x34, 0x60, 0x00, 0x55], // CALLVALUE -> slot 0
  ...[0x32, 0x60, 0x02, 0x55], // ORIGIN -> slot 2
  ...[0x3a, 0x60, 0x03, 0x55], // GASPRICE -> slot 3
  ...[0x5f, 0x35, 0x60, 0x01, 0x55], // calldata word 0 -> slot 1
  ...[0x43, 0x5f, 0x52], // NUMBER -> memory 0
  ...[0x42, 0x60, 0x20, 0x52], // TIMESTAMP -> memory 32
  ...[0x46, 0x60, 0x40, 0x52], // CHAINID -> memory 64
  ...[0x33, 0x60, 0x60, 0x52], // CALLER -> memory 96
  ...[0x30, 0x60, 0x80, 0x52], // ADDRESS -> memory 128
  ...[0x33, 0x60, 0xa0, 0x5f, 0xa1], // LOG1(memory 0..160, topic: caller)
];
const PROBE = Uint8Array.from([
  ...PROBE_BODY,
  ...[0x60, 0x20, 0x35, 0x60, PROBE_BODY.length + 7, 0x57], // calldata word 1 != 0: to the revert
  0x00,
  ...[0x5b, 0x5f, 0x5f, 0xfd],
]);
const PROBE_AT = createAddressFromString("0x00000000000000000000000000000000000000b0");
/** Stores calldata word 0 into slots 1 to 4 (preset): zero clears all four, whose refunds
 * exceed a fifth of the gas used (EIP-3529's cap decides). */
const SLOTS = Uint8Array.from([...[1, 2, 3, 4].flatMap((k) => [0x5f, 0x35, 0x60, k, 0x55]), 0x00]);
const SLOTS_AT = createAddressFromString("0x00000000000000000000000000000000000000b1");
const ZERO = "0x0000000000000000000000000000000000000000";

interface Chain {
  stores: { fast: Store; slow: Store };
  wallets: Wallet[];
  poor: Wallet;
  bound: Set<string>;
  token: string;
  erc20: Interface;
  nonces: Map<Wallet, number>;
  baseFee: bigint;
}

/** Two identical stores: funded wallets, a probe contract with a preset slot, the ERC-20. */
async function chain(baseFee: bigint): Promise<Chain> {
  const wallets = [0, 1, 2].map(() => new Wallet(Wallet.createRandom().privateKey));
  const poor = new Wallet(Wallet.createRandom().privateKey);
  const all = [...wallets, poor];
  const bound = new Set(all.map((w) => w.address.toLowerCase()));
  const stores = { fast: new Store(), slow: new Store() };
  for (const store of Object.values(stores)) {
    const kv = store.begin();
    const config = { chain_id: Number(CHAIN), gas_price: baseFee.toString(), block_gas_limit: 30_000_000 };
    kv.map(EVM_MAPS.config).set(
      new TextEncoder().encode("config"),
      new TextEncoder().encode(JSON.stringify(config)),
    );
    const state = new KvStateManager(kv);
    for (const w of wallets)
      await state.putAccount(createAddressFromString(w.address), new Account(0n, 10n ** 24n));
    await state.putAccount(createAddressFromString(poor.address), new Account(0n, 50_000n * (baseFee + 1n)));
    await state.putCode(PROBE_AT, PROBE);
    await state.putStorage(PROBE_AT, setLengthLeft(Uint8Array.of(1), 32), Uint8Array.of(0x2a));
    await state.putCode(SLOTS_AT, SLOTS);
    for (const k of [1, 2, 3, 4])
      await state.putStorage(SLOTS_AT, setLengthLeft(Uint8Array.of(k), 32), Uint8Array.of(k));
    state.flush();
    assert.ok(store.commit(kv).ok);
  }
  const artifact = compile().PrivateToken!;
  const c: Chain = {
    stores,
    wallets,
    poor,
    bound,
    token: getCreateAddress({ from: wallets[0]!.address, nonce: 0 }).toLowerCase(),
    erc20: new Interface(artifact.abi as never),
    nonces: new Map(),
    baseFee,
  };
  const factory = new ContractFactory(artifact.abi as never, artifact.bytecode);
  const deploy = await send(c, wallets[0]!, {
    gasLimit: 5_000_000n,
    data: (await factory.getDeployTransaction(10n ** 30n)).data,
  });
  assert.equal(deploy.receipt?.status, "0x1");
  for (const w of wallets.slice(1)) {
    const r = await send(c, wallets[0]!, {
      to: c.token,
      gasLimit: 100_000n,
      data: c.erc20.encodeFunctionData("transfer", [w.address, 10n ** 20n]),
    });
    assert.equal(r.receipt?.status, "0x1");
  }
  return c;
}

type Body = Record<string, unknown> | Record<string, unknown>[];

/** One JSON-RPC body in one Coco transaction, committed when it wrote: the answer and the writes. */
async function rpc(store: Store, bound: Set<string>, body: Body) {
  const kv = store.begin();
  const ctx = { kv, bound, host, filters: new Filters(now) };
  const response = await answer(ctx, new TextEncoder().encode(JSON.stringify(body)));
  const writes = writesOf(kv);
  if (writes.length > 0) assert.ok(store.commit(kv).ok);
  else kv.abandon();
  return { response, writes };
}

/** Both ways; they must agree. Answers the fast store's outcome. */
async function both(c: Chain, body: Body) {
  const out: Record<string, unknown> = {};
  for (const mode of ["fast", "slow"] as const) {
    setFastPath(mode === "fast");
    try {
      out[mode] = await rpc(c.stores[mode], c.bound, body);
    } finally {
      setFastPath(true);
    }
  }
  assert.deepEqual(out.fast, out.slow);
  return out.fast as Awaited<ReturnType<typeof rpc>>;
}

const call = (method: string, params: unknown[], id = 1) => ({ jsonrpc: "2.0", id, method, params });

interface Sent {
  hash?: string;
  error?: string;
  receipt?: { status: string; gasUsed: string; cumulativeGasUsed: string; effectiveGasPrice: string };
}

/** Signs `fields` (nonce: the wallet's next unless given) and sends it both ways, then reads back. */
async function send(c: Chain, from: Wallet, fields: Record<string, unknown>, nonceOffset = 0): Promise<Sent> {
  const nonce = Math.max(0, (c.nonces.get(from) ?? 0) + nonceOffset);
  const type = (fields.type as number | undefined) ?? 2;
  const fees =
    type === 2
      ? { maxFeePerGas: c.baseFee, maxPriorityFeePerGas: 0n }
      : { gasPrice: c.baseFee, ...(type === 1 ? { accessList: [] } : {}) };
  const raw = await from.signTransaction({ chainId: CHAIN, type, nonce, value: 0n, ...fees, ...fields });
  const sent = await both(c, call("eth_sendRawTransaction", [raw]));
  const r = sent.response as { result?: string; error?: { message: string } };
  if (r.error) return { error: r.error.message };
  c.nonces.set(from, nonce + 1);
  const hash = r.result!;
  const to = typeof fields.to === "string" ? fields.to : undefined;
  const reads = await both(c, [
    call("eth_getTransactionReceipt", [hash], 1),
    call("eth_getTransactionByHash", [hash], 2),
    call("eth_getTransactionCount", [from.address, "latest"], 3),
    call("eth_getBalance", [from.address, "latest"], 4),
    ...(to && c.bound.has(to.toLowerCase()) ? [call("eth_getBalance", [to, "latest"], 5)] : []),
    call("eth_getBlockByNumber", ["latest", false], 6),
  ]);
  const receipt = (reads.response as Array<{ result: unknown }>)[0]!.result as Sent["receipt"];
  return { hash, receipt };
}

/** The storage slot of `holder`'s balance in the ERC-20 (OpenZeppelin: mapping at slot 0). */
function balanceSlot(holder: string): string {
  const key = new Uint8Array(64);
  key.set(setLengthLeft(hexToBytes(holder as `0x${string}`), 32));
  return `0x${Buffer.from(keccak256(key)).toString("hex")}`;
}

const word = (n: bigint) => n.toString(16).padStart(64, "0");

for (const baseFee of [0n, 1_000n]) {
  test(`plain calls on the fast transaction path, base fee ${baseFee}: identical to runTx`, async () => {
    const c = await chain(baseFee);
    const [alice, bob, carol] = c.wallets as [Wallet, Wallet, Wallet];
    const transfer = (to: string, amount: bigint) => c.erc20.encodeFunctionData("transfer", [to, amount]);
    const fresh = Wallet.createRandom().address;
    const txsBefore = fastPathStats.txs;
    const outcomes: string[] = [];
    const run = async (label: string, from: Wallet, fields: Record<string, unknown>, nonceOffset = 0) => {
      const r = await send(c, from, fields, nonceOffset);
      outcomes.push(`${label}: ${r.receipt?.status ?? r.error?.split(":")[0]}`);
      return r;
    };
    const tip = { maxFeePerGas: baseFee + 1_000n, maxPriorityFeePerGas: 300n };
    await run("legacy transfer", alice, {
      type: 0,
      gasPrice: baseFee + 500n,
      to: c.token,
      gasLimit: 100_000n,
      data: transfer(bob.address, 5n),
    });
    await run("2930 with the slots listed", bob, {
      type: 1,
      gasPrice: baseFee + 7n,
      to: c.token,
      gasLimit: 100_000n,
      data: transfer(carol.address, 5n),
      accessList: [
        { address: c.token, storageKeys: [balanceSlot(bob.address), balanceSlot(carol.address)] },
        { address: carol.address, storageKeys: [] },
        { address: "0x0000000000000000000000000000000000000001", storageKeys: [`0x${word(9n)}`] },
      ],
    });
    await run("1559 with a tip", carol, {
      ...tip,
      to: c.token,
      gasLimit: 100_000n,
      data: transfer(alice.address, 1n),
    });
    await run("1559 tip capped by the fee cap", carol, {
      maxFeePerGas: baseFee + 100n,
      maxPriorityFeePerGas: bigIntMin(baseFee + 100n, 300n),
      to: c.token,
      gasLimit: 100_000n,
      data: transfer(alice.address, 1n),
    });
    await run("empties a balance (refund)", carol, {
      to: c.token,
      gasLimit: 100_000n,
      data: transfer(bob.address, 10n ** 20n - 2n + 5n),
    });
    await run("value to an account", alice, {
      ...tip,
      to: bob.address,
      value: 10n ** 18n,
      gasLimit: 21_000n,
    });
    await run("value to a new account", alice, { to: fresh, value: 12345n, gasLimit: 30_000n });
    await run("nothing to a new account", alice, { to: Wallet.createRandom().address, gasLimit: 21_000n });
    await run("value to the coinbase", alice, { ...tip, to: ZERO, value: 7n, gasLimit: 21_000n });
    await run("value to oneself", alice, { ...tip, to: alice.address, value: 99n, gasLimit: 21_000n });
    await run("value into the probe", bob, {
      ...tip,
      to: PROBE_AT.toString(),
      value: 1000n,
      gasLimit: 200_000n,
      data: `0x${word(0n)}`,
    });
    await run("probe reverts (value stays)", bob, {
      to: PROBE_AT.toString(),
      value: 1000n,
      gasLimit: 200_000n,
      data: `0x${word(5n)}${word(1n)}`,
    });
    await run("refunds beyond the cap (EIP-3529)", carol, {
      to: SLOTS_AT.toString(),
      gasLimit: 100_000n,
      data: `0x${word(0n)}`,
    });
    await run("slots set again", carol, {
      ...tip,
      to: SLOTS_AT.toString(),
      gasLimit: 100_000n,
      data: `0x${word(9n)}`,
    });
    // A JSON-RPC batch: two transactions in one Coco transaction (each its own block).
    const batch = await Promise.all(
      [0, 1].map((k) =>
        alice.signTransaction({
          chainId: CHAIN,
          type: 2,
          nonce: (c.nonces.get(alice) ?? 0) + k,
          ...tip,
          to: PROBE_AT.toString(),
          value: 5n + BigInt(k),
          gasLimit: 200_000n,
          data: `0x${word(BigInt(k))}`,
        }),
      ),
    );
    const batched = await both(
      c,
      batch.map((raw, i) => call("eth_sendRawTransaction", [raw], i)),
    );
    assert.equal((batched.response as Array<{ result?: string }>).filter((r) => r.result).length, 2);
    c.nonces.set(alice, (c.nonces.get(alice) ?? 0) + 2);
    await run("value into the token (reverts)", bob, { to: c.token, value: 1n, gasLimit: 100_000n });
    await run("revert with the token's error", carol, {
      to: c.token,
      gasLimit: 100_000n,
      data: transfer(bob.address, 1n),
    });
    await run("out of gas in the frame", bob, {
      to: c.token,
      gasLimit: 23_000n,
      data: transfer(carol.address, 1n),
    });
    await run("calldata floor (EIP-7623)", alice, {
      ...tip,
      to: bob.address,
      gasLimit: 100_000n,
      data: `0x${"ab".repeat(300)}`,
    });
    await run("zero bytes are cheaper", alice, {
      to: bob.address,
      gasLimit: 100_000n,
      data: `0x${"00".repeat(300)}`,
    });
    await run("precompile (runTx)", alice, {
      to: "0x0000000000000000000000000000000000000004",
      gasLimit: 50_000n,
      data: "0x1234",
    });
    await run("nonce too low", alice, { to: bob.address, gasLimit: 21_000n }, -1);
    await run("nonce too high", alice, { to: bob.address, gasLimit: 21_000n }, 1);
    await run("gas limit below intrinsic", alice, { to: bob.address, gasLimit: 20_999n });
    await run("gas limit below the floor", alice, {
      to: bob.address,
      gasLimit: 30_000n,
      data: `0x${"ab".repeat(300)}`,
    });
    await run("gas limit above the block's", alice, { to: bob.address, gasLimit: 30_000_001n });
    await run("value beyond the balance", c.poor, {
      to: alice.address,
      value: 10n ** 30n,
      gasLimit: 21_000n,
    });
    await run("gas beyond the balance", c.poor, {
      type: 0,
      gasPrice: baseFee + 1n,
      to: alice.address,
      gasLimit: 1_000_000n,
    });
    if (baseFee > 0n) {
      await run("fee cap below the base fee", alice, {
        maxFeePerGas: baseFee - 1n,
        maxPriorityFeePerGas: 0n,
        to: bob.address,
        gasLimit: 21_000n,
      });
      await run("gas price below the base fee", alice, {
        type: 0,
        gasPrice: baseFee - 1n,
        to: bob.address,
        gasLimit: 21_000n,
      });
    }
    const ok = (label: string) => outcomes.find((o) => o.startsWith(`${label}:`));
    assert.equal(ok("legacy transfer"), "legacy transfer: 0x1");
    assert.equal(ok("probe reverts (value stays)"), "probe reverts (value stays): 0x0");
    assert.equal(ok("revert with the token's error"), "revert with the token's error: 0x0");
    assert.equal(ok("nonce too low"), "nonce too low: nonce too low");
    assert.equal(ok("nonce too high"), "nonce too high: nonce too high");
    assert.equal(ok("gas limit below intrinsic"), "gas limit below intrinsic: intrinsic gas too low");
    assert.equal(
      ok("value beyond the balance"),
      "value beyond the balance: insufficient funds for gas * price + value",
    );
    assert.ok(
      fastPathStats.txs - txsBefore >= 15,
      `transactions ran on the fast path: ${outcomes.join("; ")}`,
    );
  });
}

test("generated plain calls: identical to runTx (types, fees, value, access lists, gas limits)", async () => {
  const c = await chain(100n);
  const [alice, bob, carol] = c.wallets as [Wallet, Wallet, Wallet];
  const targets = [
    c.token,
    PROBE_AT.toString(),
    SLOTS_AT.toString(),
    bob.address,
    alice.address,
    ZERO,
    "0x00000000000000000000000000000000000000e1",
    "0x0000000000000000000000000000000000000002",
  ];
  const slots = [balanceSlot(alice.address), balanceSlot(bob.address), `0x${word(0n)}`, `0x${word(1n)}`];
  const txsBefore = fastPathStats.txs;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        from: fc.constantFrom(alice, alice, carol, carol, c.poor),
        type: fc.constantFrom(0, 1, 2),
        target: fc.nat(targets.length - 1),
        value: fc.oneof(
          { arbitrary: fc.constant(0n), weight: 4 },
          { arbitrary: fc.bigInt(1n, 10n ** 6n), weight: 4 },
          { arbitrary: fc.constant(10n ** 26n), weight: 1 },
        ),
        price: fc.oneof(
          { arbitrary: fc.bigInt(100n, 400n), weight: 9 },
          { arbitrary: fc.bigInt(90n, 99n), weight: 1 },
        ),
        tip: fc.bigInt(0n, 300n),
        gasLimit: fc.oneof(
          { arbitrary: fc.bigInt(20_000n, 30_000n), weight: 1 },
          { arbitrary: fc.bigInt(30_000n, 120_000n), weight: 4 },
        ),
        data: fc.oneof(
          fc.constant("0x"),
          fc.constantFrom(
            c.erc20.encodeFunctionData("transfer", [bob.address, 1n]),
            c.erc20.encodeFunctionData("transfer", [carol.address, 10n ** 19n]),
            c.erc20.encodeFunctionData("approve", [carol.address, 3n]),
            `0x${word(0n)}${word(0n)}`,
            `0x${word(77n)}${word(0n)}`,
            `0x${word(77n)}${word(1n)}`,
          ),
          fc.uint8Array({ maxLength: 200 }).map((b) => `0x${Buffer.from(b).toString("hex")}`),
        ),
        list: fc.array(fc.record({ target: fc.nat(targets.length - 1), slots: fc.subarray(slots) }), {
          maxLength: 3,
        }),
        nonceOffset: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, -1, 1),
      }),
      async (g) => {
        const fees =
          g.type === 2
            ? { maxFeePerGas: g.price, maxPriorityFeePerGas: bigIntMin(g.tip, g.price) }
            : { gasPrice: g.price, ...(g.type === 1 ? { accessList: [] } : {}) };
        const accessList =
          g.type === 0
            ? {}
            : { accessList: g.list.map((e) => ({ address: targets[e.target]!, storageKeys: e.slots })) };
        await send(
          c,
          g.from,
          {
            type: g.type,
            to: targets[g.target],
            value: g.value,
            gasLimit: g.gasLimit,
            data: g.data,
            ...fees,
            ...accessList,
          },
          g.nonceOffset,
        );
      },
    ),
    { numRuns: 200, seed: 14 },
  );
  assert.ok(fastPathStats.txs - txsBefore >= 50, "many ran on the fast path");
});
