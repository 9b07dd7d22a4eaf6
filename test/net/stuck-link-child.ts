/**
 * Run by stuck-link.test.ts inside a fresh network namespace (`unshare -n`, root): two nodes'
 * channels on 127.0.0.1 trade a message every 100 ms both ways; nftables then drops every packet
 * between them for `HOLD_MS` (no reset: a partition), and heals. Prints, as JSON, how long after
 * the heal a message sent after it reached each side.
 */
import { execFileSync } from "node:child_process";
import { makeNode, makeService, mesh, sleep, start, waitFor } from "./helpers.ts";

const HOLD_MS = Number(process.env.HOLD_MS ?? 7_000);
const nft = (script: string) => execFileSync("nft", ["-f", "-"], { input: script });
execFileSync("ip", ["link", "set", "lo", "up"]);

const service = await makeService();
// Coco's own reconnect back-off, not the fast one of other tests: what a node really does.
const backoff = { initialMs: 100, maxMs: 5_000 };
const a = await start(await makeNode(service), { backoff });
const b = await start(await makeNode(service), { backoff });
mesh([a, b]);
const last = { a: 0, b: 0 };
a.onMessage((_from, m) => {
  last.a = Math.max(last.a, (m as { t: number }).t);
});
b.onMessage((_from, m) => {
  last.b = Math.max(last.b, (m as { t: number }).t);
});
let sending = true;
const pinger = (async () => {
  while (sending) {
    const t = Date.now();
    a.send(b.nodeId, { t });
    b.send(a.nodeId, { t });
    await sleep(100);
  }
})();
await waitFor("traffic both ways", () => last.a > 0 && last.b > 0, 10_000);
await sleep(500);
const ports = `{ ${a.port}, ${b.port} }`;
nft(
  `table inet cut {\n chain in {\n  type filter hook input priority 0;\n  tcp dport ${ports} drop\n  tcp sport ${ports} drop\n }\n}\n`,
);
await sleep(HOLD_MS);
nft("delete table inet cut\n");
const healedAt = Date.now();
const result: { aMs: number | null; bMs: number | null } = { aMs: null, bMs: null };
const deadline = healedAt + 20_000;
while (Date.now() < deadline && (result.aMs === null || result.bMs === null)) {
  if (result.aMs === null && last.a >= healedAt) result.aMs = Date.now() - healedAt;
  if (result.bMs === null && last.b >= healedAt) result.bMs = Date.now() - healedAt;
  await sleep(10);
}
sending = false;
await pinger;
await Promise.all([a.close(), b.close()]);
console.log(JSON.stringify(result));
