/**
 * Intkey batches per second on a 3-node in-process Coco network serving Sawtooth: one processor
 * (written with sawtooth-sdk) per node, clients signing with sawtooth-sdk/signing and posting
 * BatchLists over HTTPS to the primary, each batch of `--txns` intkey `inc`s, `--concurrency`
 * clients in parallel, for `--seconds`. A batch counts once its POST answered 202 (executed on
 * the primary and committed locally); the run ends by waiting for the last one to be committed.
 *
 *   npx tsx bench/sawtooth.ts [--seconds 10] [--concurrency 4] [--txns 1]
 *
 * No Sawtooth validator can run on this machine to compare against (see docs/sawtooth.md).
 */
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { request } from "undici";
import { freePort } from "../test/helpers/cli.ts";
import { Cluster } from "../test/helpers/cluster.ts";
import { passProposal } from "../test/helpers/network.ts";
import { IntkeyClient, startProcessor } from "../test/sawtooth/intkey.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "4" },
    txns: { type: "string", default: "1" },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const txns = Number(values.txns);

// The SDK's processor logs every ping and registration to the console; keep the output JSON.
console.log = () => {};

const cluster = await Cluster.create();
const urls: string[] = [];
const settings = async () => {
  const port = await freePort();
  urls.push(`tcp://127.0.0.1:${port}`);
  return { sawtooth: { processorAddress: `tcp://127.0.0.1:${port}` } };
};
const n0 = await cluster.startService({ openAtNodes: 3, ...(await settings()) });
await Promise.all([cluster.join("n1", n0, await settings()), cluster.join("n2", n0, await settings())]);
await cluster.untilOpen();
const processors = urls.map((u) => startProcessor(u));
const clients = Array.from({ length: concurrency }, () => new IntkeyClient());
await passProposal(await cluster.gov(), "set_sawtooth_batchers", {
  batchers: clients.map((c) => c.publicKey),
});

const primary = cluster.primary()!;
const post = async (body: Uint8Array, headers: Record<string, string> = {}) => {
  const res = await request(cluster.url(primary, "/app/sawtooth/batches"), {
    method: "POST",
    dispatcher: cluster.agent("user"),
    headers: { "content-type": "application/octet-stream", ...headers },
    body,
  });
  return { status: res.statusCode, text: await res.body.text() };
};

// Each client owns `txns` names, set once, so clients never conflict on state.
for (const [i, c] of clients.entries()) {
  const set = c.batch(Array.from({ length: txns }, (_, t) => c.transaction("set", `k${i}-${t}`, 0)));
  const res = await post(c.batchList([set]), { "x-coco-wait": "commit" });
  if (res.status !== 202) throw new Error(`setup failed: ${res.status} ${res.text}`);
}

let committed = 0;
let failed = 0;
const latencies: number[] = [];
const deadline = Date.now() + seconds * 1000;
const started = Date.now();
await Promise.all(
  clients.map(async (c, i) => {
    while (Date.now() < deadline) {
      const batch = c.batch(Array.from({ length: txns }, (_, t) => c.transaction("inc", `k${i}-${t}`, 1)));
      const t0 = performance.now();
      const res = await post(c.batchList([batch]));
      latencies.push(performance.now() - t0);
      if (res.status === 202) committed++;
      else failed++;
    }
  }),
);
// The last batches must be committed too: one more write waits for commit, which covers them.
const c0 = clients[0]!;
await post(c0.batchList([c0.batch([c0.transaction("inc", "k0-0", 1)])]), { "x-coco-wait": "commit" });
const elapsed = (Date.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10) / 10;

process.stdout.write(
  `${JSON.stringify(
    {
      command: `npx tsx bench/sawtooth.ts --seconds ${seconds} --concurrency ${concurrency} --txns ${txns}`,
      network: "3 Coco nodes in one process, real TLS sockets; one sawtooth-sdk intkey processor per node",
      cpus: cpus().length,
      batches: committed,
      failed,
      transactionsPerBatch: txns,
      batchesPerSecond: Math.round((committed / elapsed) * 10) / 10,
      transactionsPerSecond: Math.round(((committed * txns) / elapsed) * 10) / 10,
      latencyMs: { p50: pct(0.5), p99: pct(0.99) },
      comparison:
        "no Sawtooth validator can run on this machine, so there is no side-by-side figure; see docs/sawtooth.md",
    },
    null,
    2,
  )}\n`,
);
for (const p of processors) p.stop();
await cluster.stop();
