// Sealing a node's secrets: on SEV-SNP with the key the secure processor derives (through the
// in-process seam that stands in for MSG_KEY_REQ, and through a real derived-key program), on the
// virtual platform with a key file outside the node's directory; old layouts keep working.
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readSealHeader, sealJson } from "../../src/crypto/index.ts";
import type { NodeIdentity } from "../../src/node/identity.ts";
import { realEnvironment } from "../../src/node/index.ts";
import { IdentityStore, type IdentityStoreOptions } from "../../src/node/sealed-identity.ts";
import { type SealingSettings, snpKeyCommand } from "../../src/tee/index.ts";
import { MILAN_TCB } from "../tee/fake-report.ts";
import {
  type FakeSnpGuest,
  fakeGuest,
  fakeKeyFirmware,
  fakeKeyToolCommand,
  fakeTsm,
  SEAM_KEY_COMMAND,
  sealingSeams,
} from "../tee/fake-snp-keys.ts";

const IDENTITY: NodeIdentity = {
  nodeId: "ab".repeat(32),
  nodePrivateKeyPem: "-----BEGIN PRIVATE KEY-----\nNODEKEYMARKER\n-----END PRIVATE KEY-----\n",
  nodeCertPem: "-----BEGIN CERTIFICATE-----\nNODECERT\n-----END CERTIFICATE-----\n",
  servicePrivateKeyPem: "-----BEGIN PRIVATE KEY-----\nSERVICEKEYMARKER\n-----END PRIVATE KEY-----\n",
  serviceCertPem: "-----BEGIN CERTIFICATE-----\nSERVICECERT\n-----END CERTIFICATE-----\n",
  ledgerSecrets: [{ version: 0, key: Buffer.alloc(32, 0x5a).toString("base64") }],
};
const quiet = { info: () => {}, warn: () => {} };
const SNP_ATTESTATION = {
  platform: "snp" as const,
  snp: { reportSource: { configfsTsm: "/sys/kernel/config/tsm/report" }, endorsements: { file: "x" } },
};
const SNP_SEALING: SealingSettings = {
  kind: "snp",
  keyCommand: SEAM_KEY_COMMAND,
  rootKey: "vcek",
  guestFieldSelect: 0b111001,
};

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "coco-sealing-"));
}

function snpOptions(dir: string, guest: FakeSnpGuest, sealing = SNP_SEALING): IdentityStoreOptions {
  return {
    dir,
    sealing,
    attestation: SNP_ATTESTATION,
    env: realEnvironment,
    log: quiet,
    seams: sealingSeams(guest),
  };
}

function fileOptions(dir: string, keyFile: string): IdentityStoreOptions {
  return {
    dir,
    sealing: { kind: "file", keyFile },
    attestation: { platform: "virtual" },
    env: realEnvironment,
    log: quiet,
  };
}

function sealedHeader(dir: string) {
  return readSealHeader("coco-node-identity-v1", new Uint8Array(readFileSync(join(dir, "identity.sealed"))));
}

test("SNP: sealed with the derived key, reopened by the same guest, the request recorded in the header", async () => {
  const root = tempDir();
  try {
    const dir = join(root, "n0");
    mkdirSync(dir);
    const guest = fakeGuest();
    const first = await IdentityStore.open(snpOptions(dir, guest));
    assert.equal(first.exists, false);
    first.save(IDENTITY);
    assert.deepEqual(sealedHeader(dir), {
      version: 2,
      header: {
        source: "snp-derived-key",
        rootKey: "vcek",
        guestFieldSelect: 0b111001,
        guestFields: ["policy", "measurement", "guest-svn", "tcb-version"],
        vmpl: 0,
        guestSvn: 2,
        tcbVersion: Buffer.from(MILAN_TCB).toString("hex"),
        measurement: guest.measurement,
      },
    });
    assert.deepEqual(readdirSync(dir), ["identity.sealed"], "no key file anywhere near the secrets");
    const again = await IdentityStore.open(snpOptions(dir, guest));
    assert.deepEqual(again.load(), IDENTITY);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("SNP: another measurement, another chip or another policy derives another key and cannot unseal", async () => {
  const root = tempDir();
  try {
    const dir = join(root, "n0");
    mkdirSync(dir);
    const guest = fakeGuest();
    (await IdentityStore.open(snpOptions(dir, guest))).save(IDENTITY);
    const sealed = readFileSync(join(dir, "identity.sealed"));

    const otherImage = fakeGuest({ measurement: "77".repeat(48) });
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, otherImage)),
      /sealed by a guest with measurement 5e5e.*this guest's is 7777.*A different image cannot open them/,
    );
    // The recorded measurement only explains the refusal; the key itself is what refuses. Claim
    // the other image's measurement in the header: the firmware still derives a different key.
    const forged = Buffer.from(
      sealed.toString("latin1").replace(guest.measurement, otherImage.measurement),
      "latin1",
    );
    writeFileSync(join(dir, "identity.sealed"), forged);
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, otherImage)),
      /the key the secure processor derived does not open it/,
    );
    writeFileSync(join(dir, "identity.sealed"), sealed);

    await assert.rejects(
      IdentityStore.open(snpOptions(dir, fakeGuest({ chipSecret: new Uint8Array(32).fill(9) }))),
      /the key the secure processor derived does not open it/,
    );
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, fakeGuest({ policy: 0x30000n | (1n << 19n) }))),
      /does not open it/,
      "a debug-enabled launch of the same image",
    );
    assert.deepEqual((await IdentityStore.open(snpOptions(dir, guest))).load(), IDENTITY);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("SNP: a newer TCB still unseals and reseals at its own TCB; a rollback or lower guest SVN says why it cannot", async () => {
  const root = tempDir();
  try {
    const dir = join(root, "n0");
    mkdirSync(dir);
    (await IdentityStore.open(snpOptions(dir, fakeGuest()))).save(IDENTITY);
    const before = sealedHeader(dir);

    const newer = [...MILAN_TCB];
    newer[6] = 25; // SNP firmware SVN 24 -> 25
    const upgraded = fakeGuest({ committedTcb: newer });
    const firmware = fakeKeyFirmware(upgraded);
    const store = await IdentityStore.open({
      ...snpOptions(dir, upgraded),
      seams: { snpSealing: { deriveKey: firmware, report: sealingSeams(upgraded).snpSealing.report } },
    });
    assert.deepEqual(store.load(), IDENTITY);
    assert.deepEqual(
      firmware.requests.map((r) => r.tcbVersion.toString(16)),
      [
        Buffer.from(newer).reverse().toString("hex").replace(/^0+/, ""),
        Buffer.from(MILAN_TCB).reverse().toString("hex").replace(/^0+/, ""),
      ],
      "asked for the current TCB's key, then for the recorded one",
    );
    const after = sealedHeader(dir);
    assert.equal(after.version === 2 && after.header.tcbVersion, Buffer.from(newer).toString("hex"));
    assert.notDeepEqual(after, before);

    // Back on the older firmware: the secure processor would refuse the newer TCB.
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, fakeGuest())),
      /sealed at TCB 04000000000019db; this platform's committed TCB is 04000000000018db, older/,
    );
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, fakeGuest({ committedTcb: newer, guestSvn: 1 }))),
      /sealed at guest SVN 2; this guest was launched with SVN 1/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("SNP refuses file keys: a key file in the directory, secrets a file key sealed, or file sealing configured", async () => {
  const root = tempDir();
  try {
    const dir = join(root, "n0");
    mkdirSync(dir);
    const guest = fakeGuest();
    writeFileSync(join(dir, "virtual_sealing.key"), Buffer.alloc(32, 1));
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, guest)),
      /virtual_sealing.key is a sealing key file.*refuses to start/,
    );
    rmSync(join(dir, "virtual_sealing.key"));

    writeFileSync(
      join(dir, "identity.sealed"),
      sealJson(new Uint8Array(32).fill(1), "coco-node-identity-v1", IDENTITY, new Uint8Array(12)),
    );
    await assert.rejects(
      IdentityStore.open(snpOptions(dir, guest)),
      /was sealed with a key file, not with a key the AMD secure processor derived: a node on SEV-SNP refuses to start with a file key/,
    );

    await assert.rejects(
      IdentityStore.open({ ...fileOptions(dir, join(root, "k")), attestation: SNP_ATTESTATION }),
      /a node on SEV-SNP refuses to start with a file key/,
    );
    assert.equal(existsSync(join(root, "k")), false, "no key file was made");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("SNP through a real derived-key program: every request field passed, 32 bytes read back", async () => {
  const root = tempDir();
  try {
    const dir = join(root, "n0");
    mkdirSync(dir);
    const guest = fakeGuest();
    for (const stdout of [false, true]) {
      rmSync(join(dir, "identity.sealed"), { force: true });
      const keyCommand = fakeKeyToolCommand(guest, join(root, "guest.json"), stdout);
      const options: IdentityStoreOptions = {
        ...snpOptions(dir, guest, { ...SNP_SEALING, keyCommand }),
        seams: { tsmFs: fakeTsm(guest) },
      };
      (await IdentityStore.open(options)).save(IDENTITY);
      assert.deepEqual((await IdentityStore.open(options)).load(), IDENTITY, stdout ? "stdout" : "{key}");
      // The program's key is the seam's key: the same request, the same firmware.
      assert.deepEqual((await IdentityStore.open(snpOptions(dir, guest))).load(), IDENTITY);
    }
    // A program the firmware refuses, one that writes no key, or a short key: clear errors.
    const refusing = fakeKeyToolCommand(fakeGuest({ guestSvn: 1 }), join(root, "old.json"));
    await assert.rejects(
      IdentityStore.open({
        ...snpOptions(dir, guest, { ...SNP_SEALING, keyCommand: refusing }),
        seams: { tsmFs: fakeTsm(guest) },
      }),
      /derived-key command .* failed: firmware status 0x16 \(INVALID_PARAM\): GUEST_SVN above the launch SVN/,
    );
    const request = { rootKey: "vcek" as const, guestFieldSelect: 8, vmpl: 0, guestSvn: 0, tcbVersion: 0n };
    await assert.rejects(
      snpKeyCommand(["/bin/true", "{request}", "{key}"])(request),
      /wrote no key to \{key\}/,
    );
    await assert.rejects(
      snpKeyCommand(["/bin/echo", "{request}"])(request),
      /gave \d+ bytes; a derived key is 32/,
    );
    await assert.rejects(
      snpKeyCommand(["/bin/sh", "-c", 'head -c 32 /dev/zero > "$0"', "{key}", "{request}"])(request),
      /all-zero key/,
    );
    assert.throws(
      () => snpKeyCommand(["snpguest", "key", "{key}", "vcek"]),
      /missing \{root-key\}, \{vmpl\}, \{guest-svn\}, \{tcb-version\}/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("virtual: the key file lives outside the directory; an old layout is resealed and its key file removed", async () => {
  const root = tempDir();
  try {
    const dir = join(root, "n0");
    mkdirSync(dir);
    const keyFile = join(root, "n0.sealing.key");
    await assert.rejects(
      IdentityStore.open(fileOptions(dir, join(dir, "k"))),
      /is inside the node's directory/,
    );
    const store = await IdentityStore.open(fileOptions(dir, keyFile));
    store.save(IDENTITY);
    assert.deepEqual(readdirSync(dir), ["identity.sealed"]);
    assert.equal(readFileSync(keyFile).length, 32);
    assert.deepEqual(sealedHeader(dir), { version: 2, header: { source: "virtual-key-file" } });
    assert.deepEqual((await IdentityStore.open(fileOptions(dir, keyFile))).load(), IDENTITY);

    // The layout nodes had before: a version 1 envelope under virtual_sealing.key beside it.
    const old = join(root, "old");
    mkdirSync(old);
    const oldKey = new Uint8Array(32).fill(0x3c);
    writeFileSync(join(old, "virtual_sealing.key"), oldKey);
    writeFileSync(
      join(old, "identity.sealed"),
      sealJson(oldKey, "coco-node-identity-v1", IDENTITY, new Uint8Array(12).fill(1)),
    );
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (_: unknown, msg: string) => warnings.push(msg) };
    const migrated = await IdentityStore.open({ ...fileOptions(old, join(root, "old.sealing.key")), log });
    assert.deepEqual(migrated.load(), IDENTITY);
    assert.deepEqual(readdirSync(old), ["identity.sealed"], "the key inside the directory is gone");
    assert.deepEqual(sealedHeader(old), { version: 2, header: { source: "virtual-key-file" } });
    assert.ok(warnings.some((w) => /DEVELOPMENT ONLY/.test(w)));
    assert.ok(warnings.some((w) => /moved the node's sealing key out of its directory/.test(w)));
    assert.deepEqual(
      (await IdentityStore.open(fileOptions(old, join(root, "old.sealing.key")))).load(),
      IDENTITY,
    );

    // Secrets without their key file: a clear error, and no new key made in its place.
    rmSync(keyFile);
    await assert.rejects(
      IdentityStore.open(fileOptions(dir, keyFile)),
      /needs its sealing key file .*n0.sealing.key.*missing/,
    );
    assert.equal(existsSync(keyFile), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
