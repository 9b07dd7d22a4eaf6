import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { request } from "undici";
import { verifyJsonReceipt } from "../../src/crypto/index.ts";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { freePort } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";
import { passProposal } from "../helpers/network.ts";
import { addressOf, decodeIntkey, IntkeyClient, NAMESPACE, startProcessor } from "./intkey.ts";

const BASE = "/app/sawtooth";
let cluster: Cluster;
const tpUrls: string[] = [];
const processors: Array<{ stop(): void }> = [];
const client = new IntkeyClient();

async function sawtoothSettings() {
  const port = await freePort();
  tpUrls.push(`tcp://127.0.0.1:${port}`);
  return { sawtooth: { processorAddress: `tcp://127.0.0.1:${port}`, processorTimeoutMs: 2000 } };
}

async function post(node: RunningNode, body: Uint8Array, headers: Record<string, string> = {}) {
  const res = await request(cluster.url(node, `${BASE}/batches`), {
    method: "POST",
    dispatcher: cluster.agent("user"),
    headers: { "content-type": "application/octet-stream", ...headers },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: () => JSON.parse(text), text };
}

const get = async (node: RunningNode, path: string) => cluster.call(node, "GET", `${BASE}${path}`);
const primary = () => cluster.primary()!;
const backup = () => cluster.nodes.find((n) => !n.node.isPrimary)!;

async function status(node: RunningNode, id: string): Promise<string> {
  const res = await get(node, `/batch_statuses?id=${id}&wait=5`);
  assert.equal(res.status, 200, res.text);
  return res.json().data[0].status;
}

async function intkeyValue(node: RunningNode, name: string): Promise<number | undefined> {
  const res = await get(node, `/state/${addressOf(name)}`);
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, res.text);
  return decodeIntkey(res.json().data)[name];
}

before(async () => {
  cluster = await Cluster.create();
  const n0 = await cluster.startService({ openAtNodes: 3, ...(await sawtoothSettings()) });
  await Promise.all([
    cluster.join("n1", n0, await sawtoothSettings()),
    cluster.join("n2", n0, await sawtoothSettings()),
  ]);
  await cluster.untilOpen();
  // A processor on every node, as a Sawtooth operator runs one per validator.
  for (const url of tpUrls) processors.push(startProcessor(url));
});

after(async () => {
  for (const p of processors) p.stop();
  await cluster.stop();
});

test("governance decides which batcher keys may submit", { timeout: budget(60_000) }, async () => {
  const batch = client.batch([client.transaction("set", "early", 1)]);
  const refused = await post(primary(), client.batchList([batch]));
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.json().error.code, 30);
  const gov = await cluster.gov();
  await passProposal(gov, "set_sawtooth_batchers", { batchers: [client.publicKey] });
  // A malformed key is refused by the constitution's validation, when proposed.
  await assert.rejects(
    gov.propose({ actions: [{ name: "set_sawtooth_batchers", args: { batchers: ["nope"] } }] }),
  );
});

test("batches commit, state reads back, and a Coco receipt verifies for the batch", {
  timeout: budget(60_000),
}, async () => {
  const batch = client.batch([client.transaction("set", "a", 10), client.transaction("set", "b", 20)]);
  const res = await post(primary(), client.batchList([batch]), { "x-coco-wait": "commit" });
  assert.equal(res.status, 202, res.text);
  assert.match(res.json().link, /batch_statuses\?id=/);
  assert.equal(await status(primary(), batch.headerSignature), "COMMITTED");
  assert.equal(await intkeyValue(primary(), "a"), 10);
  await cluster.until("a backup has the state", async () => (await intkeyValue(backup(), "b")) === 20);

  const listed = (await get(primary(), `/state?address=${NAMESPACE}`)).json();
  assert.equal(listed.data.length, 2);
  assert.ok(listed.head && listed.paging);
  const bad = await get(primary(), "/state/xyz");
  assert.equal(bad.status, 400);
  assert.equal(bad.json().error.code, 62);
  assert.equal((await get(primary(), `/state/${addressOf("nobody")}`)).json().error.code, 75);

  const receipts = (await get(primary(), `/receipts?id=${batch.transactions[0].headerSignature}`)).json();
  assert.equal(receipts.data[0].state_changes[0].address, addressOf("a"));
  assert.equal(Buffer.from(receipts.data[0].data[0], "base64").toString(), "a=10");
  assert.equal(receipts.data[0].events[0].event_type, "intkey/update");
  const blocks = (await get(primary(), "/blocks")).json();
  assert.equal(blocks.data[0].header_signature, batch.headerSignature);
  const txn = (await get(backup(), `/transactions/${batch.transactions[1].headerSignature}`)).json();
  assert.equal(txn.data.header.family_name, "intkey");

  // The list endpoints page, and take only the paging parameters Coco implements: a paging loop
  // with an unknown one is refused instead of getting the first page forever.
  const firstPage = (await get(primary(), `/state?address=${NAMESPACE}&limit=1`)).json();
  assert.equal(firstPage.data.length, 1);
  const secondPage = await get(
    primary(),
    `/state?address=${NAMESPACE}&limit=1&start=${firstPage.paging.next_position}`,
  );
  assert.equal(secondPage.status, 200, secondPage.text);
  assert.notEqual(secondPage.json().data[0].address, firstPage.data[0].address);
  for (const path of [`/state?address=${NAMESPACE}&limt=1`, "/blocks?reverse", "/transactions?offset=1"]) {
    const refused = await get(primary(), path);
    assert.equal(refused.status, 400, `${path}: ${refused.text}`);
    assert.equal(refused.json().error.code, "UnknownQueryParameter", path);
  }
  assert.equal((await get(primary(), `/blocks?limit=1&head=${blocks.head}`)).status, 200);

  const txid = res.headers["x-ms-ccf-transaction-id"] as string;
  let receipt: { status: number; json(): unknown } | undefined;
  await cluster.until("the receipt is available", async () => {
    receipt = await cluster.call(primary(), "GET", `/app/receipt?transaction_id=${txid}`);
    return receipt.status === 200;
  });
  const verified = verifyJsonReceipt(receipt!.json() as never, primary().node.identity.serviceCertPem);
  assert.equal(verified.ok, true, JSON.stringify(verified));
});

test("an invalid transaction rejects its batch and changes nothing", {
  timeout: budget(60_000),
}, async () => {
  const batch = client.batch([client.transaction("inc", "a", 5), client.transaction("dec", "b", 1000)]);
  const res = await post(primary(), client.batchList([batch]));
  assert.equal(res.status, 202, res.text);
  const st = (await get(primary(), `/batch_statuses?id=${batch.headerSignature}`)).json().data[0];
  assert.equal(st.status, "INVALID");
  assert.equal(st.invalid_transactions[0].id, batch.transactions[1].headerSignature);
  assert.match(st.invalid_transactions[0].message, /below zero/);
  assert.equal(await intkeyValue(primary(), "a"), 10, "the valid transaction of the batch wrote nothing");

  // Broken signatures, a tampered payload, a wrong content type: refused before anything runs.
  const tampered = client.batch([client.transaction("inc", "a", 1)]);
  tampered.transactions[0].payload = Buffer.from("tampered");
  const refused = await post(primary(), client.batchList([tampered]));
  assert.equal(refused.status, 400);
  assert.equal(refused.json().error.code, 30);
  assert.equal((await post(primary(), new Uint8Array([1, 2, 3]))).status, 400);
  const dep = client.batch([client.transaction("inc", "a", 1, ["ab".repeat(64)])]);
  await post(primary(), client.batchList([dep]));
  assert.equal(await status(primary(), dep.headerSignature), "INVALID", "an unknown dependency");
  assert.equal(await intkeyValue(primary(), "a"), 10);
});

test("a batch sent to a backup commits", { timeout: budget(60_000) }, async () => {
  const batch = client.batch([client.transaction("set", "via-backup", 7)]);
  const res = await post(backup(), client.batchList([batch]), { "x-coco-wait": "commit" });
  assert.equal(res.status, 202, res.text);
  assert.equal(await status(backup(), batch.headerSignature), "COMMITTED");
  await cluster.until("every node has it", async () => (await intkeyValue(backup(), "via-backup")) === 7);
});

test("the processor killed and restarted mid-load loses no committed batch and commits no half batch", {
  timeout: budget(60_000),
}, async () => {
  const setup = client.batch([client.transaction("set", "x", 0), client.transaction("set", "y", 0)]);
  assert.equal((await post(primary(), client.batchList([setup]))).status, 202);
  const primaryIndex = cluster.nodes.indexOf(primary());
  const accepted: string[] = [];
  let refusedWhileDown = 0;
  const load = (async () => {
    for (let i = 0; i < 40; i++) {
      const batch = client.batch([client.transaction("inc", "x", 1), client.transaction("inc", "y", 1)]);
      const res = await post(primary(), client.batchList([batch]));
      if (res.status === 202) accepted.push(batch.headerSignature);
      else {
        assert.equal(res.status, 503, res.text);
        refusedWhileDown++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 150));
  processors[primaryIndex]!.stop();
  await new Promise((r) => setTimeout(r, 300));
  processors[primaryIndex] = startProcessor(tpUrls[primaryIndex]!);
  await load;
  for (const id of accepted) assert.equal(await status(primary(), id), "COMMITTED");
  const x = await intkeyValue(primary(), "x");
  const y = await intkeyValue(primary(), "y");
  assert.equal(x, accepted.length, "every accepted batch counted once");
  assert.equal(y, x, "no half batch");
  assert.ok(accepted.length > 0);
  process.stdout.write(
    `# accepted ${accepted.length}, refused while the processor was down ${refusedWhileDown}\n`,
  );
});

test("a processor that dies mid-request fails its batch cleanly; a resubmission then commits", {
  timeout: budget(60_000),
}, async () => {
  const i = cluster.nodes.indexOf(primary());
  processors[i]!.stop();
  const dying = startProcessor(tpUrls[i]!, { dieMidRequest: true });
  try {
    await new Promise((r) => setTimeout(r, budget(300))); // lets it register
    const batch = client.batch([
      client.transaction("set", "survivor", 1),
      client.transaction("set", "half", 1),
    ]);
    const failed = await post(primary(), client.batchList([batch]));
    assert.equal(failed.status, 503, failed.text);
    assert.equal(failed.json().error.code, 18);
    assert.equal(await intkeyValue(primary(), "survivor"), undefined, "nothing of the batch was written");
    const unknown = (await get(primary(), `/batch_statuses?id=${batch.headerSignature}`)).json();
    assert.equal(unknown.data[0].status, "UNKNOWN");

    processors[i] = startProcessor(tpUrls[i]!);
    await new Promise((r) => setTimeout(r, budget(300)));
    const again = await post(primary(), client.batchList([batch]), { "x-coco-wait": "commit" });
    assert.equal(again.status, 202, again.text);
    assert.equal(await status(primary(), batch.headerSignature), "COMMITTED");
    assert.equal(await intkeyValue(primary(), "half"), 1);
  } finally {
    dying.stop();
  }
});
