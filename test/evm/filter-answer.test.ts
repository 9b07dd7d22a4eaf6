import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Contract, ContractFactory, type JsonRpcProvider, Wallet } from "ethers";
import type { RunningNode } from "../../src/node/index.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { compile } from "./contracts.ts";
import { bindAccounts, ethersProvider, evmCluster } from "./network.ts";

/**
 * A poll of a filter whose answer fails (here: respond-on-commit of a state that cannot commit)
 * must not move the filter's cursor: the next poll reports those changes, not nothing.
 */
let cluster: Cluster;
const alice = new Wallet(Wallet.createRandom().privateKey);
const providers: JsonRpcProvider[] = [];

function provider(node: RunningNode, waitForCommit: boolean): JsonRpcProvider {
  const p = ethersProvider(node, node.node.identity.serviceCertPem, cluster.user, {
    waitForCommit,
    retry: false,
    ethers: { staticNetwork: true, cacheTimeout: -1 },
  });
  providers.push(p);
  return p;
}

before(async () => {
  cluster = await evmCluster(3);
  await bindAccounts(await cluster.gov(), cluster.user, [alice.address]);
});

after(async () => {
  for (const p of providers) p.destroy();
  await cluster?.stop();
});

test("a filter poll whose answer failed leaves its changes to the next poll", async () => {
  const token = compile().PrivateToken!;
  const primary = cluster.primary()!;
  const committed = provider(primary, true);
  const deployed = await new ContractFactory(
    token.abi as never,
    token.bytecode,
    alice.connect(committed),
  ).deploy(1_000n);
  await deployed.waitForDeployment();
  const address = await deployed.getAddress();
  const plain = provider(primary, false);
  const id = await plain.send("eth_newFilter", [{ address }]);

  // Without its backups the primary can still run a transfer, but never commit it.
  for (const node of cluster.nodes.filter((n) => n !== primary)) await node.stop();
  cluster.nodes.splice(0, cluster.nodes.length, primary);
  const erc20 = new Contract(address, token.abi as never, alice.connect(plain));
  await erc20.transfer!(alice.address, 1n, { nonce: 1, gasLimit: 200_000n });

  // Asked to answer on commit, the poll fails: its state never commits.
  await assert.rejects(committed.send("eth_getFilterChanges", [id]), /CommitTimeout|not committed|504/);
  const changes = (await plain.send("eth_getFilterChanges", [id])) as Array<{ address: string }>;
  assert.equal(changes.length, 1, "the transfer's log is reported by the next poll");
  assert.equal(changes[0]!.address.toLowerCase(), address.toLowerCase());
});
