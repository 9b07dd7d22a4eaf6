/**
 * The EVM executor alone: ERC-20 transfers through `sendRawTransaction` into an in-memory KV store,
 * one KV transaction each, no network, no ledger (16 senders, pre-signed). Prints CPU and wall
 * milliseconds per transfer. `COCO_ROOT=/other/checkout` runs another checkout's src/ (an A/B of
 * two versions with the same load).
 *
 *   npx tsx bench/evm-executor.ts [transfers per sender, default 20]
 *
 * `HEAP=FILE` writes a sampling heap profile of the timed transfers (bench/heap-summary.ts).
 *
 * `AB=ROUNDS` alternates, in this one process (after one warm-up pair), segments with a change
 * off and on, ROUNDS pairs of `transfers per sender` x 16 transfers each, and prints each pair and
 * the medians (CPU ms per transfer; on a loaded machine only the pairing makes a change readable).
 * `AB_WHAT` names the change: `fasttx` (default: the fast transaction path; off runs frames fast
 * inside ethereumjs's runTx, as in session 7), `decode` (the direct transaction decoder, against
 * ethereumjs's `createTxFromRLP`).
 * `AB=ROUNDS COCO_BASE=/other/checkout` alternates that checkout's executor (its own src/, over
 * its own store) with this one's on the same segments instead: an A/B of two versions in one
 * process (the other checkout needs a node_modules beside its src/, e.g. a symlink).
 */

import { randomBytes } from "node:crypto";
import { ContractFactory, getCreateAddress, Interface, Wallet } from "ethers";

const ROOT = process.env.COCO_ROOT ?? new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const { sendRawTransaction } = await import(`${ROOT}/src/evm/send.ts`);
const { Store } = await import(`${ROOT}/src/kv/index.ts`);
const { compile } = await import("../test/evm/contracts.ts");
const senders = 16;
const per = Number(process.argv[2] ?? 20);
if (!(Number.isInteger(per) && per >= 1 && per <= 1000))
  throw new Error("usage: evm-executor.ts [transfers per sender, 1-1000]");
const token = compile().PrivateToken!;
const base = { chainId: 0xc0c0n, gasPrice: 0n, type: 0 };
const deployer = new Wallet(Wallet.createRandom().privateKey);
const wallets = Array.from({ length: senders }, () => new Wallet(Wallet.createRandom().privateKey));
const factory = new ContractFactory(token.abi as never, token.bytecode);
const deploy = await deployer.signTransaction({
  ...base,
  nonce: 0,
  gasLimit: 5_000_000n,
  data: (await factory.getDeployTransaction(10n ** 30n)).data,
});
const tokenAddress = getCreateAddress({ from: deployer.address, nonce: 0 });
const erc20 = new Interface(token.abi as never);
const funding = await Promise.all(
  wallets.map((w, i) =>
    deployer.signTransaction({
      ...base,
      nonce: i + 1,
      to: tokenAddress,
      gasLimit: 100000n,
      data: erc20.encodeFunctionData("transfer", [w.address, 10n ** 24n]),
    }),
  ),
);
const rounds = Number(process.env.AB ?? 0);
const load: string[] = [];
for (let k = 0; k < per * (rounds > 0 ? (process.env.COCO_BASE ? 1 : 2) * (rounds + 1) : 1); k++)
  for (const [s, w] of wallets.entries())
    load.push(
      await w.signTransaction({
        ...base,
        nonce: k,
        to: tokenAddress,
        gasLimit: 100000n,
        data: erc20.encodeFunctionData("transfer", [wallets[(s + k + 1) % senders]!.address, 1n]),
      }),
    );
const bound = new Set([deployer.address, ...wallets.map((w) => w.address)].map((a) => a.toLowerCase()));
const random = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)) };
type Send = (raw: string) => Promise<void>;
/** A fresh store behind one checkout's executor, with the token deployed and the senders funded. */
async function sender(send: typeof sendRawTransaction, StoreClass: typeof Store): Promise<Send> {
  const store = new StoreClass();
  const one = async (raw: string) => {
    const tx = store.begin();
    await send(tx, raw, bound, Date.now, random);
    const r = store.commit(tx);
    if (!r.ok) throw new Error("conflict");
  };
  await one(deploy);
  for (const f of funding) await one(f);
  return one;
}
const send = await sender(sendRawTransaction, Store);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const BASE = process.env.COCO_BASE;
if (rounds > 0 && BASE) {
  // Two checkouts' executors in this one process, each over its own store, alternated.
  const base = await sender(
    (await import(`${BASE}/src/evm/send.ts`)).sendRawTransaction,
    (await import(`${BASE}/src/kv/index.ts`)).Store,
  );
  const segment = per * senders;
  const cpuMs = async (via: Send, from: number) => {
    const c = process.cpuUsage();
    for (const raw of load.slice(from, from + segment)) await via(raw);
    const u = process.cpuUsage(c);
    return (u.user + u.system) / 1000 / segment;
  };
  const pairs: Array<{ base: number; head: number }> = [];
  for (let r = 0; r <= rounds; r++) {
    // Both run the same segment, each in its own store; the order within a pair alternates.
    const first = r % 2 === 0;
    const b1 = first ? await cpuMs(base, r * segment) : 0;
    const head = await cpuMs(send, r * segment);
    const b2 = first ? b1 : await cpuMs(base, r * segment);
    if (r > 0) pairs.push({ base: +b2.toFixed(3), head: +head.toFixed(3) });
  }
  console.log(
    JSON.stringify({
      base: BASE,
      head: ROOT,
      transfers_per_segment: segment,
      pairs,
      ratio_head_base: pairs.map((p) => +(p.head / p.base - 1).toFixed(3)),
      median_base: median(pairs.map((p) => p.base)),
      median_head: median(pairs.map((p) => p.head)),
    }),
  );
  process.exit(0);
}
if (rounds > 0) {
  const what = process.env.AB_WHAT ?? "fasttx";
  const toggles: Record<string, () => Promise<(on: boolean) => void>> = {
    fasttx: async () => (await import(`${ROOT}/src/evm/fast/index.ts`)).setFastTxPath,
    decode: async () => (await import(`${ROOT}/src/evm/send.ts`)).setDirectDecoding,
  };
  if (!toggles[what]) throw new Error(`AB_WHAT must be one of ${Object.keys(toggles).join(", ")}`);
  const setOn = await toggles[what]!();
  const segment = per * senders;
  const cpuMs = async (from: number) => {
    const c = process.cpuUsage();
    for (const raw of load.slice(from, from + segment)) await send(raw);
    const u = process.cpuUsage(c);
    return (u.user + u.system) / 1000 / segment;
  };
  const pairs: Array<{ off: number; on: number }> = [];
  // Pair 0 warms both paths up (the JIT) and is not reported.
  for (let r = 0; r <= rounds; r++) {
    setOn(false);
    const off = await cpuMs(2 * r * segment);
    setOn(true);
    const on = await cpuMs((2 * r + 1) * segment);
    if (r > 0) pairs.push({ off: +off.toFixed(3), on: +on.toFixed(3) });
  }
  console.log(
    JSON.stringify({
      change: what,
      transfers_per_segment: segment,
      pairs,
      ratio_on_off: pairs.map((p) => +(p.on / p.off - 1).toFixed(3)),
      median_off: median(pairs.map((p) => p.off)),
      median_on: median(pairs.map((p) => p.on)),
    }),
  );
  process.exit(0);
}
// HEAP=FILE: V8's sampling heap profile of the timed transfers (collected objects included: what
// was allocated, not what survived), for bench/heap-summary.ts (--requests = the transfers).
const heapFile = process.env.HEAP;
const heap = heapFile ? new (await import("node:inspector/promises")).Session() : undefined;
if (heap) {
  heap.connect();
  await heap.post("HeapProfiler.startSampling", {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as never);
}
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (const raw of load) await send(raw);
const t1 = process.hrtime.bigint();
if (heap && heapFile) {
  const { profile } = (await heap.post("HeapProfiler.stopSampling")) as { profile: unknown };
  (await import("node:fs")).writeFileSync(heapFile, JSON.stringify(profile));
}
const ms = Number(t1 - t0) / 1e6;
if (process.env.WINDOW) console.log(`--from ${t0 / 1000n} --to ${t1 / 1000n}`);
const cpu = process.cpuUsage(c0);
console.log(
  JSON.stringify({
    transfers: load.length,
    wall_ms_per_tx: +(ms / load.length).toFixed(3),
    cpu_ms_per_tx: +((cpu.user + cpu.system) / 1000 / load.length).toFixed(3),
  }),
);
