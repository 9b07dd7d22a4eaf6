import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { coco } from "../helpers/cli.ts";
import { startTestNetwork, type TestNetwork } from "../helpers/network.ts";

describe("coco CLI", () => {
  let dir: string;
  let net: TestNetwork;
  let txid: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "coco-cli-"));
    net = await startTestNetwork({ ledger: { chunkSize: 4096 } });
    for (let i = 0; i < 40; i++) {
      await net.call("PUT", `/app/log/public?id=${i}`, { body: { msg: `public-${i}-${"p".repeat(80)}` } });
    }
    const res = await net.call("PUT", "/app/log/private?id=1", {
      body: { msg: "PRIVATE-CLI-MARKER" },
      headers: { "x-coco-wait": "commit" },
    });
    txid = res.txid!;
    writeFileSync(join(dir, "service_cert.pem"), net.serviceCertPem);
    writeFileSync(
      join(dir, "receipt.json"),
      (await net.call("GET", `/app/receipt?transaction_id=${txid}`)).text,
    );
    writeFileSync(
      join(dir, "receipt.cose"),
      (await net.call("GET", `/app/receipt/cose?transaction_id=${txid}`)).bytes,
    );
    await net.stop();
  });
  after(async () => {
    await net.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test("keygen writes a member key and certificate, never overwriting", () => {
    const first = coco(["keygen", "member", "member7", "--dir", dir]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /member7_cert\.pem .*member7_privk\.pem \(id [0-9a-f]{64}\)/);
    assert.ok(readFileSync(join(dir, "member7_cert.pem"), "utf8").startsWith("-----BEGIN CERTIFICATE-----"));
    assert.equal(statSync(join(dir, "member7_privk.pem")).mode & 0o777, 0o600);
    const again = coco(["keygen", "member", "member7", "--dir", dir]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists/);
    const badRole = coco(["keygen", "admin", "x", "--dir", dir]);
    assert.equal(badRole.status, 1);
    assert.match(badRole.stderr, /role must be member or user/);
  });

  test("receipt verify accepts good JSON and COSE receipts and names the failed check otherwise", () => {
    const cert = join(dir, "service_cert.pem");
    for (const file of ["receipt.json", "receipt.cose"]) {
      const ok = coco(["receipt", "verify", join(dir, file), "--service-cert", cert]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`receipt OK for ${txid.replace(".", "\\.")}`));
    }
    const receipt = JSON.parse(readFileSync(join(dir, "receipt.json"), "utf8"));
    const tampered: Array<[string, (r: typeof receipt) => void, RegExp]> = [
      [
        "write_set_digest",
        (r) => (r.leaf_components.write_set_digest = "00".repeat(32)),
        /signature check failed/,
      ],
      ["node_id", (r) => (r.node_id = "ab".repeat(32)), /node_id check failed/],
      ["signature", (r) => (r.signature = Buffer.alloc(96, 1).toString("base64")), /check failed/],
      ["proof", (r) => (r.proof = [{ left: "11".repeat(32) }, ...r.proof]), /signature check failed/],
      ["shape", (r) => delete r.cert, /format check failed/],
    ];
    for (const [what, mutate, expected] of tampered) {
      const copy = structuredClone(receipt);
      mutate(copy);
      writeFileSync(join(dir, "bad.json"), JSON.stringify(copy));
      const bad = coco(["receipt", "verify", join(dir, "bad.json"), "--service-cert", cert]);
      assert.equal(bad.status, 1, what);
      assert.match(bad.stderr, expected, what);
    }
    const missing = coco(["receipt", "verify", join(dir, "nope.json"), "--service-cert", cert]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read receipt/);
  });

  test("ledger read shows public data, and private data only with the node's secrets", () => {
    const ledgerDir = join(net.nodeDir, "ledger");
    const plain = coco(["ledger", "read", ledgerDir]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /public:records 0x0000000000000003 = "public-3-/);
    assert.match(plain.stdout, /encrypted private domain/);
    assert.doesNotMatch(plain.stdout, /PRIVATE-CLI-MARKER/);
    const decrypted = coco(["ledger", "read", ledgerDir, "--node-dir", net.nodeDir]);
    assert.equal(decrypted.status, 0, decrypted.stderr);
    assert.match(decrypted.stdout, /records 0x0000000000000001 = "PRIVATE-CLI-MARKER"/);
  });

  test("ledger audit passes on a good ledger and fails, naming the place, on a flipped byte", () => {
    const ledgerDir = join(net.nodeDir, "ledger");
    const cert = join(dir, "service_cert.pem");
    const good = coco(["ledger", "audit", ledgerDir, "--service-cert", cert]);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /ledger OK: \d+ transactions, \d+ signatures/);
    // The last signature, as view.seqno, is what picks the ledger to recover from.
    const json = JSON.parse(coco(["ledger", "audit", ledgerDir, "--service-cert", cert, "--json"]).stdout);
    assert.equal(json.lastSignature.seqno, json.verifiedThrough);
    assert.ok(json.lastSignature.view >= 1);
    assert.match(
      good.stdout,
      new RegExp(`last signature ${json.lastSignature.view}\\.${json.lastSignature.seqno}\\)`),
    );
    const chunk = join(ledgerDir, readdirSync(ledgerDir).find((f) => f.endsWith(".committed"))!);
    const bytes = readFileSync(chunk);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 3)]! ^= 0x80;
    writeFileSync(chunk, flipped);
    try {
      const bad = coco(["ledger", "audit", ledgerDir, "--service-cert", cert]);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /ledger INVALID at/);
    } finally {
      writeFileSync(chunk, bytes);
    }
    const otherService = coco([
      "ledger",
      "audit",
      ledgerDir,
      "--service-cert",
      join(dir, "member7_cert.pem"),
    ]);
    assert.equal(otherService.status, 1);
  });

  test("start refuses a bad config with a clear message", () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ dir: "n", members: [] }, /at least one member/],
      [{ dir: "n", members: [{ cert: "m.pem" }], rpc: { address: "nowhere" } }, /rpc.address/],
      [{ dir: "n", members: [{ cert: "m.pem" }], colour: "blue" }, /unknown setting/],
      [
        { dir: "n", members: [{ cert: "m.pem" }], signatures: { maxTransactions: 0 } },
        /signatures.maxTransactions/,
      ],
    ];
    for (const [config, expected] of cases) {
      writeFileSync(join(dir, "bad-config.json"), JSON.stringify(config));
      const result = coco(["start", "--config", join(dir, "bad-config.json")]);
      assert.equal(result.status, 1);
      assert.match(result.stderr, expected);
    }
    writeFileSync(join(dir, "bad-config.json"), "{ not json");
    assert.match(coco(["start", "--config", join(dir, "bad-config.json")]).stderr, /not valid JSON/);
    writeFileSync(join(dir, "m.pem"), "not a certificate");
    writeFileSync(join(dir, "bad-config.json"), JSON.stringify({ dir: "n", members: [{ cert: "m.pem" }] }));
    const badCert = coco(["start", "--config", join(dir, "bad-config.json")]);
    assert.equal(badCert.status, 1);
    assert.match(badCert.stderr, /not a usable certificate/);
    assert.equal(
      existsSync(join(dir, "n", "ledger")) && readdirSync(join(dir, "n", "ledger")).length > 1,
      false,
    );
  });
});
