/**
 * The console in a real browser (Debian's Chromium, driven by playwright-core) against a live
 * 3-node sandbox that started the console itself, as `npm start` does. With
 * COCO_CONSOLE_SCREENSHOTS=1 it also writes the screenshots shown in docs/console.md.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { request } from "undici";
import { CONSOLE_DIST } from "../../src/console/index.ts";
import { budget, Network, waitUntil } from "../e2e/harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SHOTS = process.env.COCO_CONSOLE_SCREENSHOTS === "1" ? join(ROOT, "docs/console") : undefined;
/** Generous, and stretched by the load: the test machine is shared and often loaded. */
const UI_TIMEOUT_MS = budget(30_000);

const skip = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium; .ci/run does it)`;
if (skip) console.log(`# SKIP console browser tests: ${skip}`);

describe("the console in a browser, against a live 3-node sandbox", {
  skip,
  timeout: budget(600_000),
}, () => {
  let net: Network;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  let profile: string;

  const shot = async (name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const open = async (hash: string) => {
    await page.goto(`${url}${hash}`);
    await page.waitForSelector(`[data-testid="page-${hash.replace(/^#\//, "").split("?")[0]}"]`);
  };

  before(async () => {
    if (!existsSync(join(CONSOLE_DIST, "index.html"))) {
      execFileSync(
        process.execPath,
        [join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "console/vite.config.ts"],
        {
          cwd: ROOT,
          stdio: "inherit",
        },
      );
    }
    // On a loaded machine the sandbox's own opening votes can run out of time: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        net = await Network.start(3, { console: true, readyTimeoutMs: 180_000 });
        break;
      } catch (e) {
        if (attempt === 3) throw e;
        console.log(`# the sandbox did not open (${(e as Error).message.split("\n")[0]}); starting another`);
      }
    }
    // The sandbox prints the console's URL once it serves, just after the network's welcome.
    const consoleLine = () =>
      readFileSync(join(net.dir, "sandbox.log"), "utf8").match(/Console \(member0[^)]*\): (\S+)/);
    await waitUntil("the sandbox to print the console's URL", 60_000, () => consoleLine() !== null);
    url = consoleLine()![1]!.replace(/\/$/, "");
    profile = mkdtempSync(join(tmpdir(), "coco-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
      // The console forbids eval (its CSP); the test's own probes below are evaluated strings.
      bypassCSP: true,
    });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await net?.cleanup();
  });

  it("Network: every node live with its role, the service open, live charts", async () => {
    await open("#/network");
    await page.waitForFunction(
      `document.querySelectorAll('[data-testid="nodes"] tr[data-live="true"]').length === 3`,
    );
    assert.equal(await page.locator('[data-testid="service-status"]').textContent(), "Open");
    const roles = await page.locator('[data-testid="role"]').allInnerTexts();
    assert.deepEqual([...roles].sort(), ["Backup", "Backup", "Primary"]);
    // Some records (private and public), so the charts and the ledger have something to show.
    const primary = await net.primary();
    for (let i = 1; i <= 30; i++) {
      const kind = i % 3 === 0 ? "public" : "private";
      const res = await net.call(primary, "PUT", `/app/log/${kind}?id=${i}`, {
        body: { msg: `record ${i}` },
      });
      assert.equal(res.status, 200);
    }
    // uPlot draws on a canvas; the charts fill as the console samples the primary.
    await page.waitForFunction(
      `Number(document.querySelector('[data-testid="chart-txps"]')?.getAttribute("data-points")) >= 3`,
    );
    assert.equal(await page.locator('[data-testid="chart-txps"] canvas').count(), 1);
    await shot("network");
  });

  it("Governance: a proposal created and passed by clicking", async () => {
    await open("#/governance");
    await page.waitForSelector('[data-testid="members"] tbody tr');
    await page.selectOption('select[name="action-kind"]', "recovery_threshold");
    await page.fill('input[name="recovery_threshold"]', "1");
    await page.click('[data-testid="propose"]');
    await page.waitForFunction(
      `document.querySelector('[data-testid="proposal-state"]')?.textContent === "Open"`,
    );
    const id = new URL(page.url()).hash.match(/proposal=([0-9a-f]{64})/)?.[1];
    assert.ok(id, "the new proposal is selected, and named in the URL");
    await shot("governance");
    await page.click('[data-testid="vote-accept"]');
    await page.waitForFunction(
      `document.querySelector('[data-testid="proposal-state"]')?.textContent === "Accepted"`,
    );
    // Nothing is lost on reload: the URL still selects it, and the list shows the outcome.
    await page.reload();
    await page.waitForSelector(`tr[data-proposal="${id}"][data-state="Accepted"]`);
  });

  it("Ledger: a receipt verified in the browser, a tampered one refused", async () => {
    await open("#/ledger");
    await page.waitForSelector('[data-testid="ledger"] tr[data-kind="signature"]');
    // A committed write set with a signature after it: its receipt exists.
    const txid = (await page.evaluate(`(() => {
      const rows = [...document.querySelectorAll('[data-testid="ledger"] tbody tr')];
      const lastSignature = rows.map((r) => r.dataset.kind).lastIndexOf("signature");
      const row = rows
        .slice(0, lastSignature)
        .find((r) => r.dataset.kind === "write_set" && r.textContent.includes("Committed"));
      return row ? row.dataset.txid : undefined;
    })()`)) as string | undefined;
    assert.ok(txid, "the page lists a committed write set before a signature");
    await page.click(`tr[data-txid="${txid}"]`);
    await page.waitForSelector('[data-testid="entry-facts"]');
    await page.click('[data-testid="fetch-receipt"]');
    await page.waitForSelector('[data-testid="receipt-result"][data-ok="true"]');
    assert.match(
      (await page.locator('[data-testid="receipt-result"]').textContent()) ?? "",
      /Receipt verified/,
    );
    assert.equal(await page.locator('[data-testid="merkle-path"]').count(), 1);
    await shot("ledger");

    const receipt = JSON.parse(await page.inputValue('textarea[name="receipt"]')) as {
      signature: string;
      proof: Array<{ left?: string; right?: string }>;
    };
    // Change one byte of the path (or, with no path, of the signature): the root no longer matches.
    const step = receipt.proof[0];
    if (step) {
      const side = step.left !== undefined ? "left" : "right";
      const hex = step[side]!;
      step[side] = (hex[0] === "0" ? "1" : "0") + hex.slice(1);
    } else {
      receipt.signature = (receipt.signature[0] === "A" ? "B" : "A") + receipt.signature.slice(1);
    }
    await page.fill('textarea[name="receipt"]', JSON.stringify(receipt, null, 2));
    await page.click('[data-testid="verify-receipt"]');
    await page.waitForSelector('[data-testid="receipt-result"][data-ok="false"]');
    assert.match(
      (await page.locator('[data-testid="receipt-result"]').textContent()) ?? "",
      /Receipt refused[\s\S]*✘ Root signature/,
    );
    await shot("ledger-tampered");
  });

  it("Recovery: the service's recovery state", async () => {
    await open("#/recovery");
    await page.waitForFunction(
      `document.querySelector('[data-testid="recovery-status"]')?.textContent === "Open"`,
    );
    assert.equal(await page.locator('[data-testid="submit-share"]').isDisabled(), true);
    await shot("recovery");
  });

  it("Network: a killed node is shown unreachable", async () => {
    const primary = await net.primary();
    const victim = net.nodes.find((n) => n.id !== primary.id)!;
    await open("#/network");
    await page.waitForSelector(`tr[data-node="${victim.id}"][data-live="true"]`);
    await net.kill(victim);
    await page.waitForSelector(`tr[data-node="${victim.id}"][data-live="false"]`);
    assert.match(
      (await page.locator(`tr[data-node="${victim.id}"] [data-testid="liveness"]`).textContent()) ?? "",
      /unreachable/,
    );
    await shot("network-node-down");
  });

  it("refuses what is not its own page: another Host, a write without its header; users cannot read the ledger", async () => {
    // (fetch() may not forge a Host header; undici's request() sends it as given.)
    const wrongHost = await request(`${url}/api/session`, { headers: { host: "attacker.example" } });
    await wrongHost.body.dump();
    assert.equal(wrongHost.statusCode, 421);
    const write = await fetch(`${url}/api/gov/proposals`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: 1 } }],
      }),
    });
    assert.equal(write.status, 403);
    const primary = await net.primary();
    const asUser = await net.call(primary, "GET", "/node/ledger/entries?from=1&to=2");
    assert.equal(asUser.status, 403, "a user is no member: the explorer's endpoint is for members only");
  });
});
