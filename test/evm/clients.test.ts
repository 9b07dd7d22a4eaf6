import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  AbiCoder,
  Contract,
  ContractFactory,
  Interface,
  type JsonRpcProvider,
  keccak256,
  Wallet,
  zeroPadValue,
} from "ethers";
import { Agent, request } from "undici";
import { createPublicClient, createWalletClient, defineChain, http, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { verifyJsonReceipt } from "../../src/crypto/index.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { type Identity, makeIdentity, passProposal } from "../helpers/network.ts";
import { type Artifact, compile } from "./contracts.ts";
import { bindAccounts, ethersProvider, evmCluster, rpcUrl, userFetch } from "./network.ts";

let cluster: Cluster;
let artifacts: Record<string, Artifact>;
const alice = Wallet.createRandom();
const bob = Wallet.createRandom();
const stranger = Wallet.createRandom();
let aliceProvider: JsonRpcProvider;
let tokenAddress = "";
let transferHash = "";
let deployHash = "";
let user1: Identity;
let serviceCert = "";
let bobProvider: JsonRpcProvider;

before(async () => {
  artifacts = compile();
  cluster = await evmCluster(3);
  const gov = await cluster.gov();
  user1 = await makeIdentity("user1");
  // Alice is user0 (bound by set_user_data), Bob a second user added with his address.
  await bindAccounts(gov, cluster.user, [alice.address]);
  await bindAccounts(gov, user1, [bob.address]);
  serviceCert = cluster.nodes[0]!.node.identity.serviceCertPem;
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
  tokenAddress = address;
  deployHash = deployed.deploymentTransaction()!.hash;
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
  transferHash = tx.hash;
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

/** One raw JSON-RPC exchange as `who`, on `node` (default: a backup). */
async function rpc(
  body: unknown,
  who: Identity = user1,
  node = cluster.nodes.find((n) => !n.node.isPrimary)!,
  contentType = "application/json",
) {
  const res = await request(`https://127.0.0.1:${node.port}/app/eth`, {
    method: "POST",
    dispatcher: new Agent({ connect: { ca: serviceCert, cert: who.certPem, key: who.privateKeyPem } }),
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: the tests check JSON-RPC replies field by field
  return { status: res.statusCode, json: (await res.body.json()) as any };
}
const call = async (method: string, params: unknown[], who?: Identity) =>
  (await rpc({ jsonrpc: "2.0", id: 1, method, params }, who)).json;

test("Bob cannot read Alice's private balance through any RPC", async () => {
  const token = new Interface(artifacts.PrivateToken!.abi as never);
  const data = token.encodeFunctionData("balanceOf", [alice.address]);
  // eth_call and eth_estimateGas as Alice: `from` is not Bob's, so the call runs from zero.
  const asAlice = await call("eth_call", [{ from: alice.address, to: tokenAddress, data }, "latest"]);
  assert.equal(asAlice.error.code, 3);
  assert.match(asAlice.error.message, /balance is private/);
  const estimate = await call("eth_estimateGas", [{ from: alice.address, to: tokenAddress, data }]);
  assert.equal(estimate.error.code, 3);
  // Alice herself reads it.
  const own = await call(
    "eth_call",
    [{ from: alice.address, to: tokenAddress, data }, "latest"],
    cluster.user,
  );
  assert.equal(BigInt(own.result), 999_750n);
  // Raw storage: the balances mapping is slot 0; every slot but EIP-1967's reads as zero.
  const slot = keccak256(AbiCoder.defaultAbiCoder().encode(["address", "uint256"], [alice.address, 0]));
  assert.equal(BigInt((await call("eth_getStorageAt", [tokenAddress, slot, "latest"])).result), 0n);
  assert.equal(
    BigInt((await call("eth_getStorageAt", [tokenAddress, slot, "latest"], cluster.user)).result),
    0n,
  );
  // Alice's transactions, receipts, Coco TxIDs and native balance are hers.
  for (const h of [deployHash, transferHash]) {
    assert.equal((await call("eth_getTransactionByHash", [h])).result, null);
    assert.equal((await call("eth_getTransactionReceipt", [h])).result, null);
    assert.equal((await call("coco_getTransactionId", [h])).result, null);
  }
  assert.match((await call("eth_getBalance", [alice.address, "latest"])).error.message, /private/);
  // Logs: Bob sees only the Transfer that names him, not the mint to Alice.
  const logs = (await call("eth_getLogs", [{ fromBlock: "0x0", toBlock: "latest" }])).result as Array<{
    topics: string[];
  }>;
  assert.equal(logs.length, 1);
  assert.equal(logs[0]!.topics[2], zeroPadValue(bob.address.toLowerCase(), 32));
  const aliceLogs = (await call("eth_getLogs", [{ fromBlock: "0x0", toBlock: "latest" }], cluster.user))
    .result;
  assert.equal(aliceLogs.length, 2);
  // Blocks show hashes, never Bob-invisible bodies.
  const receipt = (await call("eth_getTransactionReceipt", [transferHash], cluster.user)).result;
  const block = (await call("eth_getBlockByNumber", [receipt.blockNumber, true])).result;
  assert.deepEqual(block.transactions, []);
  assert.equal(block.logsBloom, `0x${"00".repeat(256)}`);
});

test("an Ethereum transaction's Coco TxID has a verifiable Coco receipt", async () => {
  const receipt = (await call("eth_getTransactionReceipt", [transferHash], cluster.user)).result;
  const txid = (await call("coco_getTransactionId", [transferHash], cluster.user)).result;
  assert.match(txid, /^\d+\.\d+$/);
  assert.equal(receipt.cocoTransactionId, txid);
  let body: unknown;
  await cluster.until("the receipt is available", async () => {
    const res = await cluster.call(cluster.nodes[0]!, "GET", `/app/receipt?transaction_id=${txid}`);
    if (res.status !== 200) return false;
    body = res.json();
    return true;
  });
  const verified = verifyJsonReceipt(body, serviceCert);
  assert.ok(verified.ok);
  assert.equal((verified as { txid: string }).txid, txid);
});

test("JSON-RPC errors: unknown methods, malformed requests, batches", async () => {
  assert.equal((await call("eth_mine", [])).error.code, -32601);
  assert.equal((await rpc("{not json")).json.error.code, -32700);
  assert.equal((await rpc([])).json.error.code, -32600);
  assert.equal((await rpc({ id: 1, method: "eth_chainId" })).json.error.code, -32600);
  assert.equal(
    (await rpc({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: {} })).json.error.code,
    -32602,
  );
  assert.equal((await call("eth_getCode", ["0x1234", "latest"])).error.code, -32602);
  assert.equal((await call("eth_sendRawTransaction", ["0xzz"])).error.code, -32602);
  const batch = await rpc([
    { jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] },
    { jsonrpc: "2.0", id: 2, method: "nope", params: [] },
    { jsonrpc: "2.0", method: "eth_chainId", params: [] },
    { jsonrpc: "2.0", id: 3, method: "eth_getCode", params: [tokenAddress, "latest"] },
  ]);
  assert.equal(batch.status, 200);
  assert.equal(batch.json.length, 3);
  assert.deepEqual(batch.json[0], { jsonrpc: "2.0", id: 1, result: "0xc0c0" });
  assert.equal(batch.json[1].error.code, -32601);
  assert.ok(batch.json[2].result.length > 100);
  const get = await cluster.call(cluster.nodes[0]!, "GET", "/app/eth");
  assert.equal(get.status, 405);
});

test("a body that is not JSON by its content type is refused with 415 in Coco's error shape, sending nothing", async () => {
  const primary = cluster.nodes.find((n) => n.node.isPrimary)!;
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const onPrimary = async (method: string, params: unknown[]) =>
    (await rpc({ jsonrpc: "2.0", id: 1, method, params }, cluster.user, primary)).json.result;
  const head = await onPrimary("eth_blockNumber", []);
  const nonce = Number(await onPrimary("eth_getTransactionCount", [alice.address, "latest"]));
  const raw = await alice.signTransaction({
    chainId: 0xc0c0n,
    nonce,
    gasPrice: 0n,
    gasLimit: 21_000n,
    to: bob.address,
  });
  const send = { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] };
  for (const node of [primary, backup]) {
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const res = await rpc(send, cluster.user, node, type);
      assert.equal(res.status, 415, `${type}: ${JSON.stringify(res.json)}`);
      assert.deepEqual(Object.keys(res.json), ["error"]);
      assert.equal(res.json.error.code, "UnsupportedContentType");
      assert.match(res.json.error.message, /application\/json/);
    }
  }
  assert.equal(await onPrimary("eth_blockNumber", []), head, "nothing was sent");
  // The same transaction as JSON (with a charset) goes through: only the content type was refused.
  const ok = await rpc(send, cluster.user, primary, "application/json; charset=utf-8");
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.json.result, keccak256(raw));
});

test("viem 2 reads, transfers and waits for the receipt; the random precompile answers a contract", async () => {
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const chain = defineChain({
    id: 0xc0c0,
    name: "Coco",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl(backup)] } },
  });
  const transport = http(rpcUrl(backup), { fetchFn: userFetch(serviceCert, cluster.user) });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 100 });
  const account = privateKeyToAccount(alice.privateKey as `0x${string}`);
  const wallet = createWalletClient({ chain, transport, account });
  const abi = artifacts.PrivateToken!.abi as never;
  const before = (await publicClient.readContract({
    address: tokenAddress as `0x${string}`,
    abi,
    functionName: "balanceOf",
    args: [account.address],
    account: account.address,
  })) as bigint;
  const hash = await wallet.writeContract({
    address: tokenAddress as `0x${string}`,
    abi,
    functionName: "transfer",
    args: [bob.address, 5n],
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100 });
  assert.equal(receipt.status, "success");
  const [transfer] = parseEventLogs({ abi, logs: receipt.logs }) as unknown as Array<{
    args: { value: bigint };
  }>;
  assert.equal(transfer!.args.value, 5n);
  const after = (await publicClient.readContract({
    address: tokenAddress as `0x${string}`,
    abi,
    functionName: "balanceOf",
    args: [account.address],
    account: account.address,
  })) as bigint;
  assert.equal(after, before - 5n);
  assert.equal(await publicClient.getBlockNumber(), receipt.blockNumber);

  // The random precompile, from a contract: each roll differs, and every node holds the same.
  const dice = artifacts.Dice!;
  const deployHash = await wallet.deployContract({
    abi: dice.abi as never,
    bytecode: dice.bytecode as `0x${string}`,
  });
  const deployed = await publicClient.waitForTransactionReceipt({ hash: deployHash, pollingInterval: 100 });
  const diceAddress = deployed.contractAddress!;
  const rolls: string[] = [];
  for (let i = 0; i < 2; i++) {
    const h = await wallet.writeContract({
      address: diceAddress,
      abi: dice.abi as never,
      functionName: "roll",
    });
    const r = await publicClient.waitForTransactionReceipt({ hash: h, pollingInterval: 100 });
    // viem sends the gas eth_estimateGas gave, estimated a moment before the roll ran, maybe in
    // an earlier second: it must still be enough (a roll that ran out of gas kept the last one's
    // state, which once looked like a backup stuck a block behind; test/evm/estimate.test.ts).
    assert.equal(r.status, "success", `roll ${i} reverted, with ${r.gasUsed} gas used`);
    // NUMBER, TIMESTAMP and BLOCKHASH agree with the chain the RPC reports.
    const read = (fn: string) =>
      publicClient.readContract({ address: diceAddress, abi: dice.abi as never, functionName: fn });
    // The receipt may come from the primary (a connection whose session was forwarded) while a
    // read on another connection is answered by the backup, a moment behind (docs/ethereum.md).
    // Up to 30 s, for a loaded machine.
    for (let wait = 0; (await read("lastNumber")) !== r.blockNumber && wait < 300; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const number = await read("lastNumber");
    if (number !== r.blockNumber) {
      // Say what each node holds, so a failure tells a lagging backup from a lost block.
      const nodes = await Promise.all(
        cluster.nodes.map(async (node) => ({
          primary: node.node.isPrimary,
          block: (
            await rpc({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }, cluster.user, node)
          ).json.result,
          seqno: node.node.state.lastSeqno,
          commit: node.node.state.commitSeqno,
        })),
      );
      assert.fail(
        `roll ${i}: lastNumber ${number}, receipt's block ${r.blockNumber}; nodes ${JSON.stringify(nodes)}`,
      );
    }
    const last = (await publicClient.readContract({
      address: diceAddress,
      abi: dice.abi as never,
      functionName: "last",
    })) as string;
    assert.equal(last.length, 66);
    rolls.push(last);
    assert.equal(await read("lastNumber"), r.blockNumber);
    const block = await publicClient.getBlock({ blockNumber: r.blockNumber });
    assert.equal(await read("lastTime"), block.timestamp);
    assert.equal(await read("parentHash"), block.parentHash);
  }
  assert.notEqual(rolls[0], rolls[1]);
  const data = new Interface(dice.abi as never).encodeFunctionData("last", []);
  await cluster.until("every node holds the last roll", async () => {
    for (const node of cluster.nodes) {
      const reply = await rpc(
        { jsonrpc: "2.0", id: 1, method: "eth_call", params: [{ to: diceAddress, data }, "latest"] },
        cluster.user,
        node,
      );
      if (reply.json.result !== rolls[1]) return false;
    }
    return true;
  });
});

test("every node, and a backup after a restart, reports the same chain; numbering goes on by one", async () => {
  const latestOn = async (node: (typeof cluster.nodes)[number]) =>
    (
      await rpc(
        { jsonrpc: "2.0", id: 1, method: "eth_getBlockByNumber", params: ["latest", false] },
        cluster.user,
        node,
      )
    ).json.result as { number: string; hash: string; parentHash: string };
  const primaryHead = await latestOn(cluster.primary()!);
  await cluster.until("every node has the primary's head", async () => {
    for (const node of cluster.nodes) if ((await latestOn(node)).hash !== primaryHead.hash) return false;
    return true;
  });
  // Restart the backup the clients do not use, from its own ledger.
  const used = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const victim = cluster.nodes.find((n) => !n.node.isPrimary && n !== used)!;
  const { nodeAddress, rpc: rpcAddress } = victim.node.config;
  const name = victim.node.config.dir.split("/").at(-1)!;
  await victim.stop();
  cluster.nodes.splice(cluster.nodes.indexOf(victim), 1);
  const back = await cluster.start(name, {
    join: { target: "127.0.0.1:1", serviceCertFile: "service_cert.pem" },
    nodeAddress: `${nodeAddress.host}:${nodeAddress.port}`,
    rpc: { address: `${rpcAddress.host}:${rpcAddress.port}` },
  });
  // Its own ledger already holds the head: wait until it has rejoined and knows the primary too.
  await cluster.until(
    "the restarted node has the head and knows the primary",
    async () => (await latestOn(back)).hash === primaryHead.hash && back.node.primaryId !== null,
  );
  const nonce = Number((await call("eth_getTransactionCount", [alice.address, "latest"])).result);
  const raw = await alice.signTransaction({
    to: bob.address,
    nonce,
    gasLimit: 21_000,
    gasPrice: 0,
    chainId: 0xc0c0,
  });
  // A node just restarted may not reach the primary yet: it answers 503 (forwarding failed, or
  // no primary known), which a client retries; the same signed transaction is sent again.
  let sent = await rpc(
    { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] },
    cluster.user,
    back,
  );
  for (let i = 0; i < 40 && sent.status === 503; i++) {
    await new Promise((r) => setTimeout(r, 250));
    sent = await rpc(
      { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] },
      cluster.user,
      back,
    );
  }
  assert.match(
    String(sent.json.result),
    /^0x[0-9a-f]{64}$/,
    `the restarted node answered ${JSON.stringify(sent)}`,
  );
  await cluster.until("the restarted node sees the next block", async () => {
    const head = await latestOn(back);
    return BigInt(head.number) === BigInt(primaryHead.number) + 1n && head.parentHash === primaryHead.hash;
  });
});

test("a backup that is behind answers an account's pending nonce from the primary, and latest from its own state", async () => {
  const primary = cluster.nodes.find((n) => n.node.isPrimary)!;
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const count = async (node: typeof backup, tag: string) =>
    Number(
      (
        await rpc(
          { jsonrpc: "2.0", id: 1, method: "eth_getTransactionCount", params: [alice.address, tag] },
          cluster.user,
          node,
        )
      ).json.result,
    );
  const nonce = await count(primary, "latest");
  await cluster.until("the backup has Alice's nonce", async () => (await count(backup, "latest")) === nonce);
  // The backup hears nothing more from the primary, so it stays behind (the other backup makes
  // the majority): what a slow link or a busy backup does for a moment.
  const replica = (backup.node as unknown as { replica: { step: (from: string, m: unknown) => void } })
    .replica;
  const step = replica.step;
  replica.step = () => {};
  try {
    const raw = await alice.signTransaction({
      to: bob.address,
      nonce,
      gasLimit: 21_000,
      gasPrice: 0,
      chainId: 0xc0c0,
    });
    const sent = await rpc(
      { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] },
      cluster.user,
      primary,
    );
    assert.equal(sent.json.result, keccak256(raw));
    // Each call on a new connection, so no forwarded session carries it to the primary.
    assert.equal(await count(backup, "pending"), nonce + 1, "the nonce to sign the next transaction with");
    assert.equal(await count(backup, "latest"), nonce, "the backup's own state, still behind");
    // ethers and viem ask for the pending nonce in a batch with other calls: the batch goes too.
    const batch = await rpc(
      [
        { jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] },
        { jsonrpc: "2.0", id: 2, method: "eth_getTransactionCount", params: [alice.address, "pending"] },
      ],
      cluster.user,
      backup,
    );
    assert.equal(Number(batch.json[1].result), nonce + 1);
  } finally {
    replica.step = step;
  }
  await cluster.until(
    "the backup catches up",
    async () => (await count(backup, "latest")) === nonce + 1,
    30_000,
  );
});

test("governance sets the gas price and block gas limit (set_evm_config)", async () => {
  await passProposal(await cluster.gov(), "set_evm_config", {
    chain_id: 0xc0c0,
    gas_price: "1000",
    block_gas_limit: 20_000_000,
  });
  await cluster.until(
    "the backup sees the new gas price",
    async () => (await call("eth_gasPrice", [])).result === "0x3e8",
  );
  const latest = (await call("eth_getBlockByNumber", ["latest", false])).result;
  assert.ok(latest.number !== "0x0");
  const nonce = Number((await call("eth_getTransactionCount", [alice.address, "latest"])).result);
  const free = await alice.signTransaction({
    to: bob.address,
    nonce,
    gasLimit: 21_000,
    gasPrice: 0,
    chainId: 0xc0c0,
  });
  const refused = await call("eth_sendRawTransaction", [free], cluster.user);
  assert.match(refused.error.message, /underpriced/);
  const tooBig = await alice.signTransaction({
    to: bob.address,
    nonce,
    gasLimit: 25_000_000,
    gasPrice: 1000,
    chainId: 0xc0c0,
  });
  assert.match((await call("eth_sendRawTransaction", [tooBig], cluster.user)).error.message, /gas limit/);
  await assert.rejects(
    passProposal(await cluster.gov(), "set_evm_config", { chain_id: 0, gas_price: "1", block_gas_limit: 1 }),
    /chain_id/,
  );
  const paid = await alice.signTransaction({
    to: bob.address,
    nonce,
    gasLimit: 21_000,
    gasPrice: 1000,
    chainId: 0xc0c0,
  });
  // Alice has no ether to pay for gas: refused with the text clients expect.
  assert.match(
    (await call("eth_sendRawTransaction", [paid], cluster.user)).error.message,
    /insufficient funds/,
  );
});
