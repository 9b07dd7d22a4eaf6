import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { GovClient } from "../../src/client/index.ts";
import { RECOVERY_SHARES_TABLE } from "../../src/node/recovery-shares.ts";
import { decryptShare, RecoveryShareCollector } from "../../src/recovery/index.ts";
import { budget } from "../e2e/waits.ts";
import { makeIdentity, startTestNetwork, type TestNetwork } from "../helpers/network.ts";

const YES = "export function vote (proposal, proposerId) { return true }";
const dir = mkdtempSync(join(tmpdir(), "coco-shares-"));
let net: TestNetwork;
const members: Array<{ gov: GovClient; encryptionKeyPem: string }> = [];

before(async () => {
  const configured: Array<{ cert: string; encryptionPublicKey: string }> = [];
  const keys: Array<{ cert: string; key: string; enc: string }> = [];
  for (let i = 0; i < 3; i++) {
    const identity = await makeIdentity(`recovery${i}`);
    const enc = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(join(dir, `m${i}_cert.pem`), identity.certPem);
    writeFileSync(join(dir, `m${i}_enc_pubk.pem`), enc.publicKey.export({ type: "spki", format: "pem" }));
    configured.push({
      cert: join(dir, `m${i}_cert.pem`),
      encryptionPublicKey: join(dir, `m${i}_enc_pubk.pem`),
    });
    keys.push({
      cert: identity.certPem,
      key: identity.privateKeyPem,
      enc: String(enc.privateKey.export({ type: "pkcs8", format: "pem" })),
    });
  }
  net = await startTestNetwork({ members: configured });
  for (const k of keys) {
    members.push({
      gov: new GovClient({
        url: `https://127.0.0.1:${net.running.port}`,
        serviceCertPem: net.serviceCertPem,
        memberCertPem: k.cert,
        memberKeyPem: k.key,
      }),
      encryptionKeyPem: k.enc,
    });
  }
});

after(async () => {
  for (const m of members) await m.gov.close();
  await net.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function issued(): { threshold: number; ledger_secret_version: number } & Record<string, unknown> {
  const tx = net.running.node.state.store.begin();
  const raw = tx.map(RECOVERY_SHARES_TABLE).get(new Uint8Array(8));
  tx.abandon();
  assert.ok(raw, "recovery shares are on the ledger");
  return JSON.parse(new TextDecoder().decode(raw));
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + budget(10_000);
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("recovery members get shares of the ledger secret; k of them rebuild it, fewer or wrong ones do not", async () => {
  await until("shares issued at opening", () => {
    try {
      return issued().threshold === 1;
    } catch {
      return false;
    }
  });
  // Raise the threshold by vote: two active members decide.
  await members[0]!.gov.activate();
  await members[1]!.gov.activate();
  const proposal = await members[0]!.gov.propose({
    actions: [{ name: "set_recovery_threshold", args: { recovery_threshold: 2 } }],
  });
  await members[0]!.gov.vote(proposal.proposalId, YES);
  assert.equal((await members[1]!.gov.vote(proposal.proposalId, YES)).proposalState, "Accepted");
  await until("shares reissued at threshold 2", () => issued().threshold === 2);

  const record = issued();
  const share = async (i: number) => {
    const { encryptedShare } = await members[i]!.gov.get<{ encryptedShare: string }>(
      `/gov/recovery/encrypted-shares/${members[i]!.gov.memberId}`,
    );
    return decryptShare(encryptedShare, members[i]!.encryptionKeyPem);
  };
  const collector = new RecoveryShareCollector(record);
  const first = await share(0);
  assert.throws(
    () => collector.submit(members[1]!.gov.memberId, first),
    /share/i,
    "a share submitted as another member's is refused",
  );
  collector.submit(members[0]!.gov.memberId, first);
  assert.equal(collector.remaining, 1);
  await assert.rejects(collector.recover(), /share/i);
  collector.submit(members[2]!.gov.memberId, await share(2));
  const secret = await collector.recover();
  assert.deepEqual(Buffer.from(secret), Buffer.from(net.running.node.state.secrets.current.key));
  assert.equal(record.ledger_secret_version, net.running.node.state.secrets.current.version);

  const missing = await members[0]!.gov
    .get(`/gov/recovery/encrypted-shares/${"0".repeat(64)}`)
    .catch((e: { status: number }) => e);
  assert.equal((missing as { status: number }).status, 404);

  // A new ledger secret gets new shares that open it.
  net.running.node.rekey();
  const version = net.running.node.state.secrets.current.version;
  await until("shares reissued for the new secret", () => issued().ledger_secret_version === version);
});
