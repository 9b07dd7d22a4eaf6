import assert from "node:assert/strict";
import { Agent as HttpsAgent } from "node:https";
import { after, before, test } from "node:test";
import { Contract, ContractFactory, FetchRequest, JsonRpcProvider, Wallet } from "ethers";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { passProposal } from "../helpers/network.ts";
import { type Artifact, compile } from "./contracts.ts";
import { evmCluster, rpcUrl } from "./network.ts";

let cluster: Cluster;
let token: Artifact;
const alice = new Wallet(Wallet.createRandom().privateKey);
const bob = new Wallet(Wallet.createRandom().privateKey);
const providers: JsonRpcProvider[] = [];

/** ethers on `node`, answered on commit: a hash that comes back is committed, never rolled back. */
function provider(node: RunningNode): JsonRpcProvider {
  const request = new FetchRequest(rpcUrl(node));
  const serviceCert = node.node.identity.serviceCertPem;
  const agent = new HttpsAgent({
    ca: serviceCert,
    cert: cluster.user.certPem,
    key: cluster.user.privateKeyPem,
  });
  request.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
  request.setHeader("x-coco-wait", "commit");
  const p = new JsonRpcProvider(request, undefined, { pollingInterval: 100, staticNetwork: true });
  providers.push(p);
  return p;
}

before(async () => {
  token = compile().PrivateToken!;
  cluster = await evmCluster(3);
  await passProposal(await cluster.gov(), "set_user", {
    cert: cluster.user.certPem,
    user_data: { ethereum_addresses: [alice.address, bob.address] },
  });
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
  await cluster.until("alice is bound on the backup", async () => {
    try {
      await viaBackup.send("eth_call", [{ from: alice.address, to: alice.address }, "latest"]);
      return true;
    } catch {
      return false;
    }
  });
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

  // Kill the primary (stopped in-process: its sockets close, it never answers again).
  const old = cluster.primary()!;
  await old.stop();
  cluster.nodes.splice(cluster.nodes.indexOf(old), 1);
  await cluster.until("a new primary is elected", () => cluster.primary() !== undefined, 60_000);
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

/** The first write after an election may meet a node that has not yet heard who leads: retried. */
async function retryWhileElecting(write: () => Promise<void>): Promise<void> {
  // An election stretches with the machine's load.
  const deadline = Date.now() + budget(30_000);
  for (;;) {
    try {
      return await write();
    } catch (e) {
      if (Date.now() > deadline || !/NotPrimary|primary|503|ECONNREFUSED/i.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
