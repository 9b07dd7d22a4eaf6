/**
 * What decoding a signed ERC-20 transfer costs the primary before execution: the transaction
 * decoded from its hex, its hash and its sender's public key (what `sendRawTransaction` asks of it
 * first), with the direct decoder (src/evm/decode.ts) against ethereumjs's `createTxFromRLP`,
 * alternated in one process. Prints CPU microseconds per transaction for each pair and the medians.
 *
 *   npx tsx bench/evm-decode.ts [pairs, default 7] [transactions per segment, default 2000]
 */
import { bytesToHex } from "@ethereumjs/util";
import { Interface, Wallet } from "ethers";
import { keccak256 } from "../src/evm/keccak.ts";
import { decodeRawTx, setDirectDecoding } from "../src/evm/send.ts";
import { compile } from "../test/evm/contracts.ts";

const pairs = Number(process.argv[2] ?? 7);
const segment = Number(process.argv[3] ?? 2000);
const CHAIN = 0xc0c0n;
const erc20 = new Interface(compile().PrivateToken!.abi as never);
const wallets = Array.from({ length: 16 }, () => new Wallet(Wallet.createRandom().privateKey));
const raws: string[] = [];
for (let i = 0; i < 256; i++) {
  const w = wallets[i % wallets.length]!;
  raws.push(
    await w.signTransaction({
      chainId: CHAIN,
      gasPrice: 0n,
      type: 0,
      nonce: i >> 4,
      to: wallets[(i + 1) % wallets.length]!.address,
      gasLimit: 100_000n,
      data: erc20.encodeFunctionData("transfer", [wallets[(i + 3) % wallets.length]!.address, 1n]),
    }),
  );
}

let sink = 0;
function run(): number {
  const c = process.cpuUsage();
  for (let i = 0; i < segment; i++) {
    const tx = decodeRawTx(raws[i % raws.length], CHAIN);
    sink += bytesToHex(tx.hash()).length + keccak256(tx.getSenderPublicKey())[12]!;
  }
  const u = process.cpuUsage(c);
  return (u.user + u.system) / segment;
}

const rows: Array<{ ethereumjs: number; direct: number }> = [];
for (let r = 0; r <= pairs; r++) {
  setDirectDecoding(false);
  const ethereumjs = run();
  setDirectDecoding(true);
  const direct = run();
  if (r > 0) rows.push({ ethereumjs: +ethereumjs.toFixed(1), direct: +direct.toFixed(1) });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  JSON.stringify({
    us_per_tx: rows,
    change: rows.map((p) => +(p.direct / p.ethereumjs - 1).toFixed(3)),
    median_ethereumjs: median(rows.map((p) => p.ethereumjs)),
    median_direct: median(rows.map((p) => p.direct)),
    sink: sink > 0,
  }),
);
