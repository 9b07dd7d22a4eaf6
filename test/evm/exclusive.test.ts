import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Endpoint, Executor } from "../../src/apps/index.ts";
import { createLogger, parseConfig, realEnvironment, runNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { freePort } from "../helpers/ports.ts";

/**
 * The `exclusive` endpoint option the EVM relies on: every write reads and writes one key (as
 * every Ethereum send reads and writes the chain head), and yields to the event loop in between
 * (as the EVM's async execution may). Without `exclusive` these conflict and re-run until rpc
 * gives up; with it they run one at a time on the primary and every one commits once.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KEY = encoder.encode("head");

/** How many times the handler ran: a conflict re-runs it. */
let runs = 0;

function counter(exclusive: boolean): Endpoint {
  return {
    method: "POST",
    path: "/exclusive",
    auth: ["user_cert"],
    mode: "readwrite",
    exclusive,
    async handler({ tx }) {
      runs++;
      const map = tx.map("counter");
      const raw = map.get(KEY);
      const n = raw === undefined ? 0 : Number(decoder.decode(raw));
      await new Promise((r) => setTimeout(r, 2));
      map.set(KEY, encoder.encode(String(n + 1)));
      return { body: { n: n + 1 } };
    },
  };
}

// One endpoint object: rpc holds the turn per endpoint object.
const endpoint = counter(true);
const executor: Executor = {
  name: "counter",
  match(method, path) {
    if (path !== "/exclusive") return undefined;
    if (method !== "POST") return { methodNotAllowed: true };
    return { endpoint, params: {} };
  },
};

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create();
  cluster.start = async (name, { rpc, ...settings }) => {
    const config = parseConfig(
      {
        dir: name,
        rpc: { address: `127.0.0.1:${await freePort()}`, ...(rpc as object | undefined) },
        nodeAddress: `127.0.0.1:${await freePort()}`,
        log: { level: "error" },
        ...settings,
      },
      cluster.dir,
    );
    const running = await runNode(config, realEnvironment, createLogger({ level: "error", format: "json" }), [
      executor,
    ]);
    cluster.nodes.push(running);
    return running;
  };
  await cluster.startService({ openAtNodes: 1 });
  await cluster.untilOpen();
});

after(async () => {
  await cluster?.stop();
});

test("exclusive writes that all read and write one key each commit once, none conflicting", async () => {
  const primary = cluster.primary()!;
  const n = 30;
  const answers = await Promise.all(
    Array.from({ length: n }, () => cluster.call(primary, "POST", "/app/exclusive", { body: {} })),
  );
  for (const a of answers) assert.equal(a.status, 200, a.text);
  const seen = answers.map((a) => (a.json() as { n: number }).n).sort((x, y) => x - y);
  assert.deepEqual(
    seen,
    Array.from({ length: n }, (_, i) => i + 1),
    "each write saw the one before it",
  );
  assert.equal(runs, n, "no write was re-run after a conflict");
});
