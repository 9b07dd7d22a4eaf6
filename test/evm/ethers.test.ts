import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Contract, ContractFactory, type JsonRpcProvider, Wallet } from "ethers";
import type { Cluster } from "../helpers/cluster.ts";
import { makeIdentity, passProposal } from "../helpers/network.ts";
import { type Artifact, compile } from "./contracts.ts";
import { ethersProvider, evmCluster } from "./network.ts";

let cluster: Cluster;
let artifacts: Record<string, Artifact>;
const alice = Wallet.createRandom();
const bob = Wallet.createRandom();
const stranger = Wallet.createRandom();
let aliceProvider: JsonRpcProvider;
let bobProvider: JsonRpcProvider;

before(async () => {
  artifacts = compile();
  cluster = await evmCluster(3);
  const gov = await cluster.gov();
  const user1 = await makeIdentity("user1");
  // Alice is user0 (bound by set_user_data), Bob a second user added with his address.
  await passProposal(gov, "set_user", {
    cert: cluster.user.certPem,
    user_data: { ethereum_addresses: [alice.address] },
  });
  await passProposal(gov, "set_user", {
    cert: user1.certPem,
    user_data: { ethereum_addresses: [bob.address] },
  });
  const serviceCert = cluster.nodes[0]!.node.identity.serviceCertPem;
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  aliceProvider = ethersProvider(backup, serviceCert, cluster.user);
  bobProvider = ethersProvider(backup, serviceCert, user1);
  await cluster.until(
    "the users are known on the backup",
    async () => (await bobProvider.send("eth_chainId", [])) !== undefined,
  );
});

after(async () => {
  aliceProvider?.destroy();
  bobProvider?.destroy();
  await cluster?.stop();
});

test("ethers deploys an ERC-20 through a backup, transfers, and follows Transfer events", async () => {
  const signer = alice.connect(aliceProvider);
  const network = await aliceProvider.getNetwork();
  assert.equal(network.chainId, 0xc0c0n);
  const token = artifacts.PrivateToken!;
  const factory = new ContractFactory(token.abi as never, token.bytecode, signer);
  const deployed = await factory.deploy(1_000_000n);
  await deployed.waitForDeployment();
  const address = await deployed.getAddress();
  const erc20 = new Contract(address, token.abi as never, signer);
  assert.equal(await erc20.balanceOf!(alice.address), 1_000_000n);

  const seen: Array<{ from: string; to: string; value: bigint }> = [];
  const bobToken = new Contract(address, token.abi as never, bob.connect(bobProvider));
  // With a topic filter, ethers hands the listener the event payload, which decodes the args.
  await bobToken.on(bobToken.filters.Transfer!(null, bob.address), (...args: unknown[]) => {
    const [from, to, value] = (args.at(-1) as { args: [string, string, bigint] }).args;
    seen.push({ from, to, value });
  });

  const tx = await erc20.transfer!(bob.address, 250n);
  const receipt = await tx.wait();
  assert.equal(receipt!.status, 1);
  assert.ok(receipt!.gasUsed > 21_000n);
  assert.equal(receipt!.logs.length, 1);
  assert.ok(receipt!.blockHash.startsWith("0x"));
  const block = await aliceProvider.getBlock(receipt!.blockNumber);
  assert.equal(block!.hash, receipt!.blockHash);
  assert.equal(await erc20.balanceOf!(alice.address), 999_750n);
  assert.equal(await bobToken.balanceOf!(bob.address), 250n);
  await cluster.until("Bob's filter sees the Transfer", () => seen.length === 1, 15_000);
  assert.deepEqual(seen[0], { from: alice.address, to: bob.address, value: 250n });
  await bobToken.removeAllListeners();

  // A reverted call comes back with its reason decoded by ethers.
  await assert.rejects(bobToken.balanceOf!(alice.address), /balance is private/);
  // A used nonce is refused with the text clients expect.
  const stale = await signer.signTransaction({
    to: bob.address,
    nonce: 0,
    gasLimit: 21_000,
    gasPrice: 0,
    chainId: network.chainId,
  });
  await assert.rejects(aliceProvider.broadcastTransaction(stale), (e: Error) => /nonce/i.test(e.message));
  // An account not bound to the calling user cannot send.
  const foreign = await stranger.signTransaction({
    to: bob.address,
    nonce: 0,
    gasLimit: 21_000,
    gasPrice: 0,
    chainId: network.chainId,
  });
  await assert.rejects(aliceProvider.broadcastTransaction(foreign), /not an Ethereum account bound/);
});
