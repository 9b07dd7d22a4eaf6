import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Contract, ContractFactory, type JsonRpcProvider, Wallet } from "ethers";
import type { RunningNode } from "../../src/node/index.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { type Artifact, compile } from "./contracts.ts";
import {
  bindAccounts,
  ethersProvider,
  evmCluster,
  killPrimary,
  ON_COMMIT,
  retryWhileElecting,
  untilBound,
} from "./network.ts";

let cluster: Cluster;
let token: Artifact;
const alice = new Wallet(Wallet.createRandom().privateKey);
const bob = new Wallet(Wallet.createRandom().privateKey);
const providers: JsonRpcProvider[] = [];

/** ethers on `node`, answered on commit: a hash that comes back is committed, never rolled back. */
function provider(node: RunningNode): JsonRpcProvider {
  const p = ethersProvider(node, node.node.identity.serviceCertPem, cluster.user, ON_COMMIT);
  providers.push(p);
  return p;
}

before(async () => {
  token = compile().PrivateToken!;
  cluster = await evmCluster(3);
  await bindAccounts(await cluster.gov(), cluster.user, [alice.address, bob.address]);
});

after(async () => {
  // ethers uninstalls a removed listener's filter in the background: let it finish first.
  await new Promise((r) => setTimeout(r, 1_000));
  for (const p of providers) p.destroy();
  await cluster?.stop();
});

test("the ERC-20 keeps working after the primary is killed, with every committed transfer", async () => {
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const viaBackup = provider(backup);
  await untilBound(cluster, viaBackup, alice.address, "alice is bound on the backup");
  const deployed = await new ContractFactory(
    token.abi as never,
    token.bytecode,
    alice.connect(viaBackup),
  ).deploy(1_000_000n);
  await deployed.waitForDeployment();
  const address = await deployed.getAddress();
  const committed: string[] = [];
  // A backup may answer reads a moment behind a committed write (the hash comes back once a
  // majority has it), so nonces are counted here, as a NonceManager would, not re-read.
  let nonce = 1;
  const transfer = async (via: JsonRpcProvider, amount: bigint) => {
    const erc20 = new Contract(address, token.abi as never, alice.connect(via));
    const tx = await erc20.transfer!(bob.address, amount, { nonce });
    nonce++;
    const receipt = await tx.wait();
    assert.equal(receipt!.status, 1);
    committed.push(tx.hash);
  };
  for (const amount of [1n, 2n, 3n]) await transfer(viaBackup, amount);

  await killPrimary(cluster);
  const survivors = cluster.nodes;

  // A node that survived, and the new primary, both serve the token.
  const viaSurvivor = provider(survivors.find((n) => n !== cluster.primary()) ?? survivors[0]!);
  const viaPrimary = provider(cluster.primary()!);
  // Transfer events are followed with a filter installed after the failover.
  const seen: bigint[] = [];
  const bobToken = new Contract(address, token.abi as never, bob.connect(viaSurvivor));
  await bobToken.on(bobToken.filters.Transfer!(alice.address, bob.address), (...args: unknown[]) => {
    seen.push((args.at(-1) as { args: [string, string, bigint] }).args[2]);
  });
  await retryWhileElecting(() => transfer(viaSurvivor, 4n));
  await transfer(viaPrimary, 5n);

  // Every committed transfer is there, on every surviving node.
  for (const node of survivors) {
    const p = provider(node);
    await cluster.until("the node has every transfer", async () => {
      for (const hash of committed) if ((await p.getTransactionReceipt(hash))?.status !== 1) return false;
      return true;
    });
    const asAlice = new Contract(address, token.abi as never, alice.connect(p));
    const asBob = new Contract(address, token.abi as never, bob.connect(p));
    assert.equal(await asBob.balanceOf!(bob.address), 15n);
    assert.equal(await asAlice.balanceOf!(alice.address), 1_000_000n - 15n);
    const logs = await asAlice.queryFilter(
      asAlice.filters.Transfer!(alice.address, bob.address),
      0,
      "latest",
    );
    assert.deepEqual(
      logs.map((l) => l.transactionHash),
      committed,
      "the Transfer events are exactly the committed transfers, in order",
    );
  }
  await cluster.until(
    "the filter installed after the failover sees both transfers",
    () => seen.length >= 2,
    20_000,
  );
  assert.deepEqual(seen, [4n, 5n]);
  await bobToken.removeAllListeners();
});
