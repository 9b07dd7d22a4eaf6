import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Contract, ContractFactory, Interface, toBeHex, Wallet, zeroPadValue } from "ethers";
import { ethersProvider, evmCluster } from "../evm/network.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { type Identity, makeIdentity, passProposal } from "../helpers/network.ts";
import { QuorumClient } from "./client.ts";
import { compile } from "./contracts.ts";

const artifacts = compile();
const token = new Interface(artifacts.QuorumToken!.abi as never);
const reader = new Interface(artifacts.Reader!.abi as never);
/** A supply no other test writes: its bytes are searched for on disk. */
const SUPPLY = 0x5eed_c0c0_a11c_e5ba_1a9cen;
const tesseraKey = () => randomBytes(32).toString("base64");

let cluster: Cluster;
let serviceCert = "";
let a: QuorumClient;
let b: QuorumClient;
let c: QuorumClient;
/** C asking on every node. */
let cEverywhere: QuorumClient[] = [];
let tokenAddress = "";
let deployHash = "";
let transferHash = "";
let counterAddress = "";

before(async () => {
  cluster = await evmCluster(3);
  const gov = await cluster.gov();
  const users: Identity[] = [cluster.user, await makeIdentity("user1"), await makeIdentity("user2")];
  const wallets = [0, 1, 2].map(() => new Wallet(Wallet.createRandom().privateKey));
  const keys = [tesseraKey(), tesseraKey(), tesseraKey()];
  for (let i = 0; i < 3; i++) {
    await passProposal(gov, "set_user", {
      cert: users[i]!.certPem,
      user_data: { ethereum_addresses: [wallets[i]!.address], tessera_public_keys: [keys[i]] },
    });
  }
  serviceCert = cluster.nodes[0]!.node.identity.serviceCertPem;
  const [b1, b2] = cluster.nodes.filter((n) => !n.node.isPrimary);
  const primary = cluster.nodes.find((n) => n.node.isPrimary)!;
  a = new QuorumClient(b1!, serviceCert, users[0]!, wallets[0]!, keys[0]!);
  b = new QuorumClient(b2!, serviceCert, users[1]!, wallets[1]!, keys[1]!);
  c = new QuorumClient(primary, serviceCert, users[2]!, wallets[2]!, keys[2]!);
  cEverywhere = cluster.nodes.map((n) => new QuorumClient(n, serviceCert, users[2]!, wallets[2]!, keys[2]!));
  await cluster.until("every user is known on every node", async () => {
    for (const q of [a, b, ...cEverywhere]) {
      const res = await q.http("GET", "/tessera/keys");
      if (res.status !== 200 || JSON.parse(res.text).keys.length !== 1) return false;
    }
    return true;
  });
});

after(async () => {
  for (const q of [a, b, c, ...cEverywhere]) await q?.close();
  await cluster?.stop();
});

/** Polls `node`-side reads until the write is applied there (backups apply after commit). */
async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  let last: T | undefined;
  await cluster.until(what, async () => {
    last = await read();
    return ok(last);
  });
  return last as T;
}

test("A deploys a private ERC-20 for B through a backup; B sees its state and events", async () => {
  const init = new ContractFactory(
    artifacts.QuorumToken!.abi as never,
    artifacts.QuorumToken!.bytecode,
  ).interface.encodeDeploy([SUPPLY]);
  const data = artifacts.QuorumToken!.bytecode + init.slice(2);
  deployHash = await a.sendPrivate({ data }, [b.tesseraKey]);
  const receipt = await a.receipt(deployHash);
  assert.equal(receipt.status, "0x1");
  tokenAddress = receipt.contractAddress;
  assert.match(tokenAddress, /^0x[0-9a-f]{40}$/);

  const bReceipt = await b.receipt(deployHash);
  assert.equal(bReceipt.contractAddress, tokenAddress);
  assert.equal(await b.rpc("eth_getCode", [tokenAddress, "latest"]), artifacts.QuorumToken!.runtime);
  const balance = await b.rpc("eth_call", [
    { to: tokenAddress, data: token.encodeFunctionData("balanceOf", [a.wallet.address]) },
    "latest",
  ]);
  assert.equal(BigInt(balance), SUPPLY);
  // GoQuorum's payload read: the transaction's input is the payload key; parties get the payload.
  const tx = await b.rpc("eth_getTransactionByHash", [deployHash]);
  assert.ok(tx.v === "0x25" || tx.v === "0x26");
  assert.equal(await b.rpc("eth_getQuorumPayload", [tx.input]), data);
  // Tessera's receive answers the same payload to a party.
  const received = await b.http("POST", "/tessera/receive", {
    key: Buffer.from(tx.input.slice(2), "hex").toString("base64"),
  });
  assert.equal(received.status, 200);
  assert.equal(`0x${Buffer.from(JSON.parse(received.text).payload, "base64").toString("hex")}`, data);

  // A transfers 250 to B, privately; B's eth_call and logs see it.
  const transfer = token.encodeFunctionData("transfer", [b.wallet.address, 250n]);
  transferHash = await a.sendPrivate({ to: tokenAddress, data: transfer }, [b.tesseraKey]);
  assert.equal((await a.receipt(transferHash)).status, "0x1");
  const mine = await eventually(
    "B's balance on B's node",
    () =>
      b.rpc("eth_call", [
        {
          from: b.wallet.address,
          to: tokenAddress,
          data: token.encodeFunctionData("balanceOf", [b.wallet.address]),
        },
        "latest",
      ]),
    (v) => v !== "0x" && BigInt(v) === 250n,
  );
  assert.equal(BigInt(mine), 250n);
  const logs = await b.rpc("eth_getLogs", [{ fromBlock: "0x0", address: tokenAddress }]);
  const transfers = logs.map((l: { topics: string[]; data: string }) => token.parseLog(l)!);
  assert.deepEqual(
    transfers.map((t: { args: unknown[] }) => [t.args[0], t.args[1], t.args[2]]),
    [
      ["0x0000000000000000000000000000000000000000", a.wallet.address, SUPPLY],
      [a.wallet.address, b.wallet.address, 250n],
    ],
  );
  const bTransfer = await b.receipt(transferHash);
  assert.equal(bTransfer.logs.length, 1);
});

test("every party computes the same private state root", async () => {
  const roots = await Promise.all(
    [a, b].map((q) =>
      eventually(
        "the root",
        () => q.rpc("eth_storageRoot", [tokenAddress, "latest"]),
        (r) => r !== `0x${"00".repeat(32)}`,
      ),
    ),
  );
  assert.equal(roots[0], roots[1]);
  // The same party asking on every node agrees too.
  for (const node of cluster.nodes) {
    const q = new QuorumClient(node, serviceCert, b.user, b.wallet, b.tesseraKey);
    assert.equal(
      await eventually(
        "root",
        () => q.rpc("eth_storageRoot", [tokenAddress]),
        (r) => r === roots[0],
      ),
      roots[0],
    );
    await q.close();
  }
});

test("C sees nothing of the private contract by any RPC, on any node", async () => {
  const zero = `0x${"00".repeat(32)}`;
  for (const q of cEverywhere) {
    // Wait until this node has applied the transfer, then ask.
    await cluster.until("applied", async () => BigInt(await q.rpc("eth_blockNumber", [])) >= 2n);
    assert.equal(await q.rpc("eth_getCode", [tokenAddress, "latest"]), "0x");
    assert.equal(
      await q.rpc("eth_call", [
        { to: tokenAddress, data: token.encodeFunctionData("balanceOf", [a.wallet.address]) },
        "latest",
      ]),
      "0x",
    );
    for (const slot of ["0x0", "0x2", "0x5"])
      assert.equal(await q.rpc("eth_getStorageAt", [tokenAddress, slot, "latest"]), zero);
    assert.equal(await q.rpc("eth_getTransactionCount", [tokenAddress, "latest"]), "0x0");
    for (const h of [deployHash, transferHash]) {
      assert.equal(await q.rpc("eth_getTransactionByHash", [h]), null);
      assert.equal(await q.rpc("eth_getTransactionReceipt", [h]), null);
      assert.equal(await q.rpc("coco_getTransactionId", [h]), null);
    }
    assert.deepEqual(await q.rpc("eth_getLogs", [{ fromBlock: "0x0" }]), []);
    assert.deepEqual(await q.rpc("eth_getLogs", [{ fromBlock: "0x0", address: tokenAddress }]), []);
    assert.equal(await q.rpc("eth_storageRoot", [tokenAddress]), zero);
    assert.equal(await q.rpc("eth_getContractPrivacyMetadata", [tokenAddress]), null);
    const block = await q.rpc("eth_getBlockByNumber", ["0x2", true]);
    assert.deepEqual(block.transactions, []);
    assert.equal(block.gasUsed, "0x0");
  }
  // The Coco receipt of the private transaction's TxID (A learns it; C could guess it): it proves
  // that a transaction committed there, and holds digests only.
  const txid = (await a.receipt(transferHash)).cocoTransactionId as string;
  assert.match(txid, /^\d+\.\d+$/);
  const cocoReceipt = await eventually(
    "the Coco receipt",
    () => c.http("GET", `/receipt?transaction_id=${txid}`),
    (r) => r.status === 200,
  );
  const amount = zeroPadValue(toBeHex(250n), 32).slice(2);
  assert.equal(cocoReceipt.text.includes(amount), false);
  assert.equal(cocoReceipt.text.includes(artifacts.QuorumToken!.runtime.slice(202, 300)), false);
  // The payload key in the public block tells C nothing either.
  const aTx = await a.rpc("eth_getTransactionByHash", [deployHash]);
  assert.equal(await c.rpc("eth_getQuorumPayload", [aTx.input]), "0x");
  const receive = await c.http("POST", "/tessera/receive", {
    key: Buffer.from(aTx.input.slice(2), "hex").toString("base64"),
  });
  assert.equal(receive.status, 404);
  // Nor can C send to it: the contract is private to others.
  await assert.rejects(
    c.sendPrivate({ to: tokenAddress, data: token.encodeFunctionData("transfer", [c.wallet.address, 1n]) }, [
      b.tesseraKey,
    ]),
    /private to other parties/,
  );
});

test("C's filters get no private events; B's do", async () => {
  const filterC = await c.rpc("eth_newFilter", [{ fromBlock: "latest" }]);
  const bOnPrimary = new QuorumClient(c.node, serviceCert, b.user, b.wallet, b.tesseraKey);
  const filterB = await bOnPrimary.rpc("eth_newFilter", [{ fromBlock: "latest", address: tokenAddress }]);
  const hash = await a.sendPrivate(
    { to: tokenAddress, data: token.encodeFunctionData("transfer", [b.wallet.address, 5n]) },
    [b.tesseraKey],
  );
  await a.receipt(hash);
  const bLogs = await bOnPrimary.rpc("eth_getFilterChanges", [filterB]);
  assert.equal(bLogs.length, 1);
  assert.equal(bLogs[0].transactionHash, hash);
  assert.deepEqual(await c.rpc("eth_getFilterChanges", [filterC]), []);
  await bOnPrimary.close();
});

test("a public contract works for all three alongside; private contracts read it but never write it", async () => {
  const counterFactory = new ContractFactory(
    artifacts.Counter!.abi as never,
    artifacts.Counter!.bytecode,
    c.wallet.connect(ethersProvider(c.node, serviceCert, c.user)),
  );
  const counter = await counterFactory.deploy();
  await counter.waitForDeployment();
  counterAddress = await counter.getAddress();
  for (const q of [a, b, c]) {
    const provider = ethersProvider(q.node, serviceCert, q.user);
    const mine = new Contract(counterAddress, artifacts.Counter!.abi as never, q.wallet.connect(provider));
    await (await mine.inc!()).wait();
    provider.destroy();
  }
  for (const q of [a, b, c]) {
    const count = await eventually(
      "count",
      () => q.rpc("eth_call", [{ to: counterAddress, data: "0x06661abd" }]),
      (v) => v !== "0x" && BigInt(v) === 3n,
    );
    assert.equal(BigInt(count), 3n);
  }
  // A private Reader (A and B) reads the public counter...
  const deploy = await a.sendPrivate({ data: artifacts.Reader!.bytecode }, [b.tesseraKey]);
  const readerAddress = (await a.receipt(deploy)).contractAddress;
  const read = await eventually(
    "B reads through the private reader",
    () =>
      b.rpc("eth_call", [{ to: readerAddress, data: reader.encodeFunctionData("read", [counterAddress]) }]),
    (v) => v !== "0x",
  );
  assert.equal(BigInt(read), 3n);
  // ...but a private transaction that would write it is refused and changes nothing.
  await assert.rejects(
    a.sendPrivate({ to: readerAddress, data: reader.encodeFunctionData("poke", [counterAddress]) }, [
      b.tesseraKey,
    ]),
    /may not write the storage of public contract/,
  );
  await assert.rejects(a.sendPrivate({ to: counterAddress, data: "0x371303c0" }, [b.tesseraKey]), /may not/);
  assert.equal(BigInt(await a.rpc("eth_call", [{ to: counterAddress, data: "0x06661abd" }])), 3n);
});

test("a contract a private contract creates is private to the same parties", async () => {
  const factory = new Interface(artifacts.Factory!.abi as never);
  const deploy = await a.sendPrivate({ data: artifacts.Factory!.bytecode }, [b.tesseraKey]);
  const factoryAddress = (await a.receipt(deploy)).contractAddress;
  const made = await a.sendPrivate({ to: factoryAddress, data: factory.encodeFunctionData("make") }, [
    b.tesseraKey,
  ]);
  const [log] = (await a.receipt(made)).logs;
  const child = factory.parseLog(log)!.args[0] as string;
  await eventually(
    "B sees the child's code",
    () => b.rpc("eth_getCode", [child, "latest"]),
    (code) => code === artifacts.Counter!.runtime,
  );
  // B increments it privately; C sees neither the child nor its count, and cannot send to it.
  const inc = await b.sendPrivate({ to: child, data: "0x371303c0" }, [a.tesseraKey]);
  const incReceipt = await b.receipt(inc);
  assert.equal(incReceipt.status, "0x1");
  assert.equal(BigInt(await a.rpc("eth_call", [{ to: child, data: "0x06661abd" }])), 1n);
  for (const q of cEverywhere) {
    await cluster.until(
      "applied",
      async () => BigInt(await q.rpc("eth_blockNumber", [])) >= BigInt(incReceipt.blockNumber),
    );
    assert.equal(await q.rpc("eth_getTransactionReceipt", [inc]), null);
    assert.equal(await q.rpc("eth_getCode", [child, "latest"]), "0x");
    assert.equal(await q.rpc("eth_call", [{ to: child, data: "0x06661abd" }]), "0x");
  }
  await assert.rejects(
    c.sendPrivate({ to: child, data: "0x371303c0" }, [a.tesseraKey]),
    /private to other parties/,
  );
});

test("privacy marker transactions: the marked transaction is for its parties only", async () => {
  const balanceOfB = () =>
    b.rpc("eth_call", [
      {
        from: b.wallet.address,
        to: tokenAddress,
        data: token.encodeFunctionData("balanceOf", [b.wallet.address]),
      },
    ]);
  const before = BigInt(await balanceOfB());
  const transfer = token.encodeFunctionData("transfer", [b.wallet.address, 7n]);
  const { hash: markerHash, raw: markerRaw } = await a.sendWithMarker({ to: tokenAddress, data: transfer }, [
    b.tesseraKey,
  ]);
  // The marker is an ordinary public transaction of A's, to the precompile, carrying nothing.
  const precompile = await a.web3.eth.getPrivacyPrecompileAddress();
  assert.equal(precompile, "0x000000000000000000000000000000000000007a");
  const marker = await a.receipt(markerHash);
  assert.equal(marker.to, precompile);
  assert.equal(marker.status, "0x1");
  assert.deepEqual(marker.logs, []);
  assert.equal(marker.contractAddress, null);
  // B, a party, reads the private transaction and its receipt by the marker's hash (web3js-quorum).
  const privateReceipt = await eventually(
    "B's private receipt",
    () => b.web3.eth.getPrivateTransactionReceipt(markerHash),
    (r) => r !== null,
  );
  // biome-ignore lint/suspicious/noExplicitAny: an unformatted JSON-RPC answer
  const r = privateReceipt as any;
  assert.equal(r.status, "0x1");
  assert.equal(r.to.toLowerCase(), tokenAddress.toLowerCase());
  assert.equal(r.logs.length, 1);
  // biome-ignore lint/suspicious/noExplicitAny: an unformatted JSON-RPC answer
  const inner = (await b.web3.eth.getPrivateTransactionByHash(markerHash)) as any;
  assert.equal(inner.to.toLowerCase(), tokenAddress.toLowerCase());
  assert.equal(await b.rpc("eth_getQuorumPayload", [inner.input]), transfer);
  assert.equal(
    BigInt(await eventually("B's balance", balanceOfB, (v) => v !== "0x" && BigInt(v) === before + 7n)),
    before + 7n,
  );
  // C sees neither the marker nor what it carried, on any node.
  for (const q of cEverywhere) {
    await cluster.until(
      "applied",
      async () => BigInt(await q.rpc("eth_blockNumber", [])) >= BigInt(marker.blockNumber),
    );
    assert.equal(await q.web3.eth.getPrivateTransactionReceipt(markerHash), null);
    assert.equal(await q.web3.eth.getPrivateTransactionByHash(markerHash), null);
    assert.equal(await q.rpc("eth_getTransactionReceipt", [markerHash]), null);
  }
  // A distributed transaction runs once: the same marker again is refused.
  await assert.rejects(a.rpc("eth_sendRawTransaction", [markerRaw]), /names no private transaction/);
});

test("a marker must carry a transaction its own sender distributed", async () => {
  const head = await a.rpc("eth_blockNumber", []);
  const precompile = "0x000000000000000000000000000000000000007a";
  const chainId = BigInt(await a.rpc("eth_chainId", []));
  const nonce = Number(BigInt(await a.rpc("eth_getTransactionCount", [a.wallet.address, "latest"])));
  // A key nothing was distributed under.
  const bogus = await a.wallet.signTransaction({
    to: precompile,
    data: `0x${"22".repeat(64)}`,
    nonce,
    gasLimit: 100000,
    gasPrice: 0,
    chainId,
    type: 0,
  });
  await assert.rejects(a.rpc("eth_sendRawTransaction", [bogus]), /names no private transaction/);
  // B distributes a transaction of its own; A's marker cannot run it.
  const key = await b.http("POST", "/tessera/storeraw", {
    payload: Buffer.from(
      token.encodeFunctionData("transfer", [a.wallet.address, 1n]).slice(2),
      "hex",
    ).toString("base64"),
    from: b.tesseraKey,
  });
  const bNonce = Number(BigInt(await b.rpc("eth_getTransactionCount", [b.wallet.address, "latest"])));
  const bPrivate = await b.wallet.signTransaction({
    type: 0,
    to: tokenAddress,
    data: `0x${Buffer.from(JSON.parse(key.text).key, "base64").toString("hex")}`,
    nonce: bNonce,
    gasLimit: 8_000_000,
    gasPrice: 0,
  });
  const tmHash = await b.rpc("eth_distributePrivateTransaction", [
    `0x${b.web3.utils.setPrivate(bPrivate).toString("hex")}`,
    { privateFor: [a.tesseraKey] },
  ]);
  assert.match(tmHash, /^0x[0-9a-f]{128}$/);
  const stolen = await a.wallet.signTransaction({
    to: precompile,
    data: tmHash,
    nonce,
    gasLimit: 100000,
    gasPrice: 0,
    chainId,
    type: 0,
  });
  await assert.rejects(a.rpc("eth_sendRawTransaction", [stolen]), /names no private transaction/);
  assert.equal(await a.rpc("eth_blockNumber", []), head);
});

test("bad private transactions are refused and change nothing", async () => {
  const head = await a.rpc("eth_blockNumber", []);
  // An unknown recipient key, a payload no one stored, an ordinary (non-private) signature.
  await assert.rejects(a.sendPrivate({ data: "0x00" }, [tesseraKey()]), /unknown recipient/);
  const signed = await a.wallet.signTransaction({
    type: 0,
    data: `0x${"11".repeat(64)}`,
    nonce: 0,
    gasLimit: 100000,
    gasPrice: 0,
  });
  await assert.rejects(
    a.rpc("eth_sendRawPrivateTransaction", [signed, { privateFor: [b.tesseraKey] }]),
    /v must be 37 or 38/,
  );
  // B cannot send a transaction from A's account, nor store a payload under A's key.
  const stored = await b.http("POST", "/tessera/storeraw", { payload: "AAAA", from: a.tesseraKey });
  assert.equal(stored.status, 403);
  assert.equal(await a.rpc("eth_blockNumber", []), head);
});

test("neither the private bytecode nor a private balance is anywhere on disk", async () => {
  const runtime = Buffer.from(artifacts.QuorumToken!.runtime.slice(2), "hex");
  // A 48-byte stretch of the token's own code (past the common Solidity prologue).
  const code = runtime.subarray(200, 248);
  // Storage values are kept without leading zeros: the total supply and A's balance as stored.
  const asStored = (n: bigint) => {
    const hex = n.toString(16);
    return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex");
  };
  const supply = asStored(SUPPLY);
  const balance = asStored(SUPPLY - 255n);
  const needles = [
    code,
    supply,
    balance,
    Buffer.from(code.toString("hex")),
    Buffer.from(supply.toString("hex")),
    Buffer.from(balance.toString("hex")),
    Buffer.from(code.toString("base64").slice(0, 40)),
  ];
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk(cluster.dir);
  // The scan can see what is public: C's Tessera key, in governance's public users map.
  let publicSeen = 0;
  for (const file of files) {
    const bytes = readFileSync(file);
    if (bytes.indexOf(Buffer.from(c.tesseraKey)) !== -1) publicSeen++;
    for (const needle of needles) assert.equal(bytes.indexOf(needle), -1, `${file} holds private plaintext`);
  }
  assert.ok(publicSeen >= 3, "every node's ledger holds the public users map in clear");
});
