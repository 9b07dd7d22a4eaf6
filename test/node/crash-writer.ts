/**
 * Child process for the kill -9 test: runs a node on a directory and commits writes as fast as
 * it can, printing "committed <id>" only after each is reported committed. Bounded: stops by
 * itself after 20 s or 20,000 writes.
 */
import { createLogger, parseConfig, realEnvironment, runNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";

const [dir, memberCert] = process.argv.slice(2) as [string, string];
const config = parseConfig(
  {
    dir: "node0",
    rpc: { address: "127.0.0.1:0" },
    members: [{ cert: memberCert }],
    openAtNodes: 1,
    log: { level: "error" },
    signatures: { maxTransactions: 7, maxIntervalMs: 5 },
    snapshots: { txInterval: 50 },
  },
  dir,
);
const running = await runNode(
  config,
  realEnvironment,
  createLogger({ level: "error", format: "json" }),
  null,
);
const node = running.node;
// An idle machine's 20 s, stretched by the load: the test needs its count of commits first.
const deadline = Date.now() + budget(20_000);
let next = Number(process.argv[4] ?? 0);
const limit = next + 20_000;
const encoder = new TextEncoder();

async function writer(): Promise<void> {
  while (Date.now() < deadline && next < limit) {
    const id = next++;
    const tx = node.state.store.begin();
    tx.map("records").set(encoder.encode(`k${id}`), encoder.encode(`v${id}`));
    const outcome = node.commit(tx);
    if (!outcome.ok || outcome.seqno === null) throw new Error("write did not commit");
    await node.state.waitForCommit(outcome.seqno);
    process.stdout.write(`committed ${id}\n`);
  }
}
await Promise.all(Array.from({ length: 16 }, writer));
await running.stop();
