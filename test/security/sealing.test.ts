// Finding 6 of issue 11: whoever could read a node's directory had its node key, the service key
// and the ledger secrets, because the sealing key file lay beside the sealed secrets. Here an
// attacker copies a node's whole directory after it ran: no key material in it, and the secrets
// open only with what the directory does not hold (the key file elsewhere, or on SEV-SNP the
// secure processor running the same code).
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { sealingKeyFrom } from "../../src/crypto/index.ts";
import {
  createLogger,
  parseConfig,
  type RunningNode,
  realEnvironment,
  runNode,
} from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { allFiles } from "../helpers/files.ts";
import { makeFakeAmd } from "../tee/fake-amd.ts";
import { fakeGuest, fakeKeyFirmware, fakeTsm, SEAM_KEY_COMMAND, sealingSeams } from "../tee/fake-snp-keys.ts";

const commit = { "x-coco-wait": "commit" };
const MARKER = "SEALING-PRIVATE-MARKER-4d1e";
/** What Cluster.startService sets, for starting node n0 again. */
const SERVICE = {
  members: [{ cert: "member0_cert.pem" }],
  users: [{ cert: "user0_cert.pem" }],
  openAtNodes: 1,
};

/** Byte strings that must not occur in any file of a node's directory. */
function secretsOf(node: RunningNode, extraKeys: Uint8Array[]): Array<[string, Buffer]> {
  const id = node.node.identity;
  const pemBody = (pem: string) =>
    pem
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
  const out: Array<[string, Buffer]> = [
    // Certificates are public (the ledger holds them); private keys in any PEM form are not.
    ["PEM private key marker", Buffer.from("PRIVATE KEY-----")],
    ["node private key", Buffer.from(pemBody(id.nodePrivateKeyPem).slice(0, 48))],
    ["node private key (DER)", Buffer.from(pemBody(id.nodePrivateKeyPem), "base64").subarray(0, 48)],
    ["service private key", Buffer.from(pemBody(id.servicePrivateKeyPem).slice(0, 48))],
    ["service private key (DER)", Buffer.from(pemBody(id.servicePrivateKeyPem), "base64").subarray(0, 48)],
    ["private record", Buffer.from(MARKER)],
  ];
  for (const s of id.ledgerSecrets) {
    out.push([`ledger secret ${s.version} (base64)`, Buffer.from(s.key)]);
    out.push([`ledger secret ${s.version}`, Buffer.from(s.key, "base64")]);
  }
  for (const [i, key] of extraKeys.entries()) {
    out.push([`sealing key ${i}`, Buffer.from(key)]);
    out.push([`sealing key ${i} (hex)`, Buffer.from(Buffer.from(key).toString("hex"))]);
    out.push([`sealing key ${i} (base64)`, Buffer.from(Buffer.from(key).toString("base64"))]);
  }
  return out;
}

function leaks(dir: string, secrets: Array<[string, Buffer]>): string[] {
  const found: string[] = [];
  for (const file of allFiles(dir)) {
    const bytes = readFileSync(file);
    for (const [what, needle] of secrets) if (bytes.includes(needle)) found.push(`${what} in ${file}`);
  }
  return found;
}

test("virtual: a node's directory holds no key material; its secrets need the key file kept outside it", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    const n0 = await cluster.startService();
    const put = await cluster.call(n0, "PUT", "/app/log/private?id=1", {
      body: { msg: MARKER },
      headers: commit,
    });
    assert.equal(put.status, 200, put.text);
    await n0.node.flush();
    await n0.stop();
    cluster.nodes.length = 0;

    const dir = join(cluster.dir, "n0");
    const keyFile = join(cluster.dir, "n0.sealing.key");
    const fileKey = new Uint8Array(readFileSync(keyFile));
    assert.equal(fileKey.length, 32, "the development key file is beside the directory, not in it");
    assert.ok(allFiles(dir).some((f) => f.endsWith("identity.sealed")));
    assert.deepEqual(leaks(dir, secretsOf(n0, [fileKey, sealingKeyFrom(fileKey)])), []);

    // With the key file the node comes back with its record; the directory alone is not enough.
    const again = await cluster.start("n0", SERVICE);
    assert.deepEqual((await cluster.call(again, "GET", "/app/log/private?id=1")).json(), { msg: MARKER });
    await again.stop();
    cluster.nodes.length = 0;
    rmSync(keyFile);
    await assert.rejects(
      cluster.start("n0", SERVICE),
      /identity.sealed needs its sealing key file .*n0.sealing.key.*missing/,
    );
  } finally {
    await cluster.stop();
    rmSync(cluster.dir, { recursive: true, force: true });
  }
});

test("SEV-SNP: sealed with the derived key, restarted by the same guest, refused by another image; no key file anywhere", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const amd = await makeFakeAmd();
  const chainFile = join(cluster.dir, "chain.pem");
  writeFileSync(chainFile, amd.chainPem);
  const guest = fakeGuest({ measurement: "c0de".repeat(24) });
  const settings = {
    ...SERVICE,
    attestation: {
      platform: "snp",
      snp: { reportSource: { configfsTsm: "/tsm" }, endorsements: { file: chainFile } },
    },
    sealing: { snp: { keyCommand: SEAM_KEY_COMMAND } },
  };
  const seamsFor = (g: typeof guest) => ({
    attestationSeams: { tsmFs: fakeTsm(g, amd.vcekKeyPem), ...sealingSeams(g) },
  });
  try {
    const firmware = fakeKeyFirmware(guest);
    const n0 = await cluster.startService(settings, {
      attestationSeams: { tsmFs: fakeTsm(guest, amd.vcekKeyPem), snpSealing: { deriveKey: firmware } },
    });
    const put = await cluster.call(n0, "PUT", "/app/log/private?id=1", {
      body: { msg: MARKER },
      headers: commit,
    });
    assert.equal(put.status, 200, put.text);
    await n0.node.flush();
    // The key the secure processor gives for the recorded request: never written anywhere.
    const platformKey = await firmware(firmware.requests[0]!);
    const secrets = secretsOf(n0, [platformKey, sealingKeyFrom(platformKey)]);
    await n0.stop();
    cluster.nodes.length = 0;
    assert.deepEqual(
      leaks(
        cluster.dir,
        secrets.filter(([what]) => !what.startsWith("PEM")),
      ),
      [],
    );
    assert.deepEqual(leaks(join(cluster.dir, "n0"), secrets), []);
    assert.ok(!allFiles(cluster.dir).some((f) => /sealing\.key$/.test(f)), "no sealing key file");

    const again = await cluster.start("n0", settings, seamsFor(guest));
    assert.deepEqual((await cluster.call(again, "GET", "/app/log/private?id=1")).json(), { msg: MARKER });
    await again.stop();
    cluster.nodes.length = 0;

    // The same disk under another image (say, one with a backdoor): it cannot open the secrets.
    const other = fakeGuest({ measurement: "bad0".repeat(24) });
    await assert.rejects(
      cluster.start("n0", settings, seamsFor(other)),
      /A different image cannot open them/,
    );
    // And an SNP node never starts with a file key, however it is configured.
    const fileKeyed = await cluster.start("virtual-n", SERVICE).catch((e) => e);
    assert.ok(!(fileKeyed instanceof Error), String(fileKeyed));
    await fileKeyed.stop();
    cluster.nodes.length = 0;
    const config = parseConfig({ dir: "virtual-n", members: [{ cert: "member0_cert.pem" }] }, cluster.dir);
    await assert.rejects(
      runNode(
        { ...config, attestation: { platform: "snp", snp: settings.attestation.snp } },
        realEnvironment,
        createLogger({ level: "error", format: "json" }),
        null,
        seamsFor(guest),
      ),
      /a node on SEV-SNP refuses to start with a file key/,
    );
  } finally {
    await cluster.stop();
    rmSync(cluster.dir, { recursive: true, force: true });
  }
});
