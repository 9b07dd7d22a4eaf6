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

/**
 * A filter installed through a backup keeps following events across a change of primary. ethers 6
 * never installs a filter again once a poll answers "filter not found" (it logs and keeps polling
 * the dead id), so a filter kept by the primary alone would silence the listener for good.
 */
let cluster: Cluster;
let token: Artifact;
const alice = new Wallet(Wallet.createRandom().privateKey);
const bob = new Wallet(Wallet.createRandom().privateKey);
const providers: JsonRpcProvider[] = [];

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
  await new Promise((r) => setTimeout(r, 1_000));
  for (const p of providers) p.destroy();
  await cluster?.stop();
});

test("a filter installed through a backup survives the primary's death", async () => {
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
  let nonce = 1;
  const transfer = async (amount: bigint) => {
    const erc20 = new Contract(address, token.abi as never, alice.connect(viaBackup));
    const receipt = await (await erc20.transfer!(bob.address, amount, { nonce })).wait();
    nonce++;
    assert.equal(receipt!.status, 1);
  };

  // The same filter, followed by ethers and polled by hand, both through the backup.
  const topics = await new Contract(address, token.abi as never, viaBackup).filters.Transfer!(
    alice.address,
    bob.address,
  ).getTopicFilter();
  const byHand = await viaBackup.send("eth_newFilter", [{ address, topics }]);
  const seen: bigint[] = [];
  const bobToken = new Contract(address, token.abi as never, bob.connect(viaBackup));
  await bobToken.on(bobToken.filters.Transfer!(alice.address, bob.address), (...args: unknown[]) => {
    seen.push((args.at(-1) as { args: [string, string, bigint] }).args[2]);
  });
  await transfer(1n);
  await cluster.until("the listener sees the transfer before the failover", () => seen.length >= 1);
  assert.equal((await viaBackup.send("eth_getFilterChanges", [byHand])).length, 1);

  await killPrimary(cluster);
  await retryWhileElecting(() => transfer(2n));
  const changes = (await viaBackup.send("eth_getFilterChanges", [byHand])) as Array<{ data: string }>;
  assert.deepEqual(
    changes.map((l) => BigInt(l.data)),
    [2n],
    "the filter installed before the failover reports the transfer after it, once",
  );
  await cluster.until("the ethers listener sees the transfer after the failover", () => seen.length >= 2);
  assert.deepEqual(seen, [1n, 2n]);
  await bobToken.removeAllListeners();
});
