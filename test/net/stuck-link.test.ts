/**
 * A link cut without a reset (a partition drops packets) must come back promptly once the
 * partition heals. TCP alone retransmits a stuck connection's data with a back-off that doubles
 * (0.2, 0.4, ... 6.4 s), so after a 7 s cut the first frame got through only about 6 s after the
 * heal; the channels now redial a connection whose frames go unanswered (src/net/peer.ts). The
 * packets are dropped by nftables in a network namespace of the test's own, so this needs root;
 * elsewhere it is skipped with the reason.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { budget } from "../e2e/waits.ts";

function unavailable(): string | false {
  if (process.getuid?.() !== 0) return "needs root (a network namespace and nftables)";
  try {
    execFileSync("unshare", ["-n", "nft", "list", "tables"], { stdio: "ignore" });
    execFileSync("unshare", ["-n", "ip", "link", "set", "lo", "up"], { stdio: "ignore" });
  } catch {
    return "needs unshare(1), nft and ip in a new network namespace";
  }
  return false;
}

test("a link cut by a partition (packets dropped, no reset) carries frames again within 3.5 s of the heal", {
  skip: unavailable(),
  // The child's run (set-up, a 7 s cut, up to 20 s after the heal) stretched by the load; the
  // 3.5 s bound below is the product's and is not.
  timeout: budget(90_000),
}, () => {
  const child = join(import.meta.dirname, "stuck-link-child.ts");
  const out = execFileSync("unshare", ["-n", process.execPath, "--import", "tsx", child], {
    encoding: "utf8",
    env: { ...process.env, HOLD_MS: "7000" },
    timeout: budget(80_000),
  });
  const { aMs, bMs } = JSON.parse(out.trim().split("\n").at(-1)!) as {
    aMs: number | null;
    bMs: number | null;
  };
  assert.ok(aMs !== null && bMs !== null, `no frame got through after the heal: ${out}`);
  assert.ok(aMs < 3_500 && bMs < 3_500, `frames got through ${aMs} ms and ${bMs} ms after the heal`);
});
