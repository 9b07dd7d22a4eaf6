import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Contract, ContractFactory, type FetchRequest, type JsonRpcProvider, Wallet } from "ethers";
import type { Cluster } from "../helpers/cluster.ts";
import { type Artifact, compile } from "./contracts.ts";
import { bindAccounts, ethersProvider, evmCluster } from "./network.ts";

// ethers 6 polls a filter once per new block it sees, and after each poll reads the block number
// afresh as its new starting point. A transfer that commits between the poll's answer and that
// read lands in no later block: on Coco no block comes without a transaction, so the listener
// would never be woken for it. Here the transport holds a poll's answer until such a transfer
// has committed (as a slow network or a loaded machine does), with ethers itself unmodified.

let cluster: Cluster;
let token: Artifact;
const alice = new Wallet(Wallet.createRandom().privateKey);
const bob = new Wallet(Wallet.createRandom().privateKey);
const providers: JsonRpcProvider[] = [];

before(async () => {
  token = compile().PrivateToken!;
  cluster = await evmCluster(1);
  await bindAccounts(await cluster.gov(), cluster.user, [alice.address, bob.address]);
});

after(async () => {
  await new Promise((r) => setTimeout(r, 1_000));
  for (const p of providers) p.destroy();
  await cluster?.stop();
});

/** A provider whose transport runs `hold` before handing ethers a poll's answer, once armed. */
function heldProvider(hold: { armed?: () => Promise<void> }): JsonRpcProvider {
  const node = cluster.nodes[0]!;
  const p = ethersProvider(node, node.node.identity.serviceCertPem, cluster.user, {
    ethers: { pollingInterval: 100, staticNetwork: true },
  });
  const request = (p as unknown as { _getConnection(): FetchRequest })._getConnection();
  const send = request.getUrlFunc;
  providers.push(p);
  // ethers sends each request through a clone of its connection: the hook goes on every clone.
  (p as unknown as { _getConnection(): FetchRequest })._getConnection = () => {
    const r = request.clone();
    r.getUrlFunc = async (req, signal) => {
      const answer = await send(req, signal);
      const body = req.body ? new TextDecoder().decode(req.body) : "";
      if (hold.armed && body.includes("eth_getFilterChanges")) {
        const run = hold.armed;
        hold.armed = undefined;
        await run();
      }
      return answer;
    };
    return r;
  };
  return p;
}

test("a transfer committed while ethers' filter poll is answered still reaches the listener", async () => {
  const node = cluster.nodes[0]!;
  const plain = ethersProvider(node, node.node.identity.serviceCertPem, cluster.user);
  providers.push(plain);
  const deployed = await new ContractFactory(token.abi as never, token.bytecode, alice.connect(plain)).deploy(
    1_000n,
  );
  await deployed.waitForDeployment();
  const address = await deployed.getAddress();
  const asAlice = new Contract(address, token.abi as never, alice.connect(plain));

  const hold: { armed?: () => Promise<void> } = {};
  const listening = heldProvider(hold);
  // The listener's first poll is answered (nothing yet); before ethers has the answer, a transfer
  // commits, and ethers' cached block number (250 ms) runs out.
  hold.armed = async () => {
    const tx = await asAlice.transfer!(bob.address, 7n);
    assert.equal((await tx.wait())!.status, 1);
    await new Promise((r) => setTimeout(r, 600));
  };
  const seen: bigint[] = [];
  const bobToken = new Contract(address, token.abi as never, bob.connect(listening));
  await bobToken.on(bobToken.filters.Transfer!(alice.address, bob.address), (...args: unknown[]) => {
    seen.push((args.at(-1) as { args: [string, string, bigint] }).args[2]);
  });
  await cluster.until("the listener sees the transfer", () => seen.length >= 1, 15_000);
  assert.deepEqual(seen, [7n]);
  // Once delivered, the block number is the head again, answer after answer.
  const head = await plain.send("eth_blockNumber", []);
  assert.equal(await plain.send("eth_blockNumber", []), head);
  assert.equal(await listening.send("eth_blockNumber", []), head);
  await bobToken.removeAllListeners();
});

test("eth_blockNumber answers to a user never go down, across sends, filter polls and reads", async () => {
  const node = cluster.nodes[0]!;
  const plain = ethersProvider(node, node.node.identity.serviceCertPem, cluster.user);
  providers.push(plain);
  const deployed = await new ContractFactory(token.abi as never, token.bytecode, alice.connect(plain)).deploy(
    1_000n,
  );
  await deployed.waitForDeployment();
  const address = await deployed.getAddress();
  const asAlice = new Contract(address, token.abi as never, alice.connect(plain));
  const logs = await plain.send("eth_newFilter", [{ address }]);
  const blocks = await plain.send("eth_newBlockFilter", []);
  const answers: bigint[] = [];
  const read = async () => {
    const answer = BigInt(await plain.send("eth_blockNumber", []));
    const before = answers.at(-1);
    assert.ok(
      before === undefined || answer >= before,
      `read ${answer} after ${before} (so far: ${answers})`,
    );
    answers.push(answer);
    return answer;
  };
  for (let round = 0; round < 3; round++) {
    await plain.send("eth_getFilterChanges", [logs]);
    if (round !== 1) await plain.send("eth_getFilterChanges", [blocks]);
    await read();
    // Sent raw, so that no eth_blockNumber but the ones recorded here reaches the node.
    const signer = alice.connect(plain);
    const raw = await signer.signTransaction(
      await signer.populateTransaction(await asAlice.transfer!.populateTransaction(bob.address, 1n)),
    );
    const hash = await plain.send("eth_sendRawTransaction", [raw]);
    let receipt: { blockNumber: string; status: string } | null = null;
    for (let i = 0; i < 300 && !receipt; i++) {
      receipt = await plain.send("eth_getTransactionReceipt", [hash]);
      if (!receipt) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(receipt?.status, "0x1");
    // The first read after the transfer is held at the last block the filters reported (the
    // wake-up); the next ones reach the transfer's block, and none goes below an earlier one.
    const reads = [await read(), await read(), await read()];
    assert.equal(reads.at(-1), BigInt(receipt!.blockNumber), `round ${round}: the head is reached`);
    assert.ok(reads[0]! < BigInt(receipt!.blockNumber), `round ${round}: the first read is held`);
  }
  await plain.send("eth_uninstallFilter", [logs]);
  await plain.send("eth_uninstallFilter", [blocks]);
});
