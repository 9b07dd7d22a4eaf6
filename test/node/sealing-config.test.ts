// The node config's `sealing` section: SNP needs a derived-key program and refuses a key file;
// the virtual platform's key file is beside the node's directory by default, never inside it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, parseConfig } from "../../src/node/index.ts";

const BASE = { dir: "n0", members: [{ cert: "member0_cert.pem" }] };
const SNP = { platform: "snp", snp: { endorsements: { file: "chain.pem" } } };
const SNPGUEST = [
  "/usr/bin/snpguest",
  "key",
  "{key}",
  "{root-key}",
  "-g",
  "{guest-field-select-bits}",
  "-s",
  "{guest-svn}",
  "-t",
  "{tcb-version}",
  "-v",
  "{vmpl}",
];

function sealing(raw: Record<string, unknown>) {
  return parseConfig({ ...BASE, ...raw }, "/srv/coco").sealing;
}

function refused(raw: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(
    () => sealing(raw),
    (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    JSON.stringify(raw),
  );
}

test("virtual: the key file defaults to beside the node's directory, and is never inside it", () => {
  assert.deepEqual(sealing({}), { kind: "file", keyFile: "/srv/coco/n0.sealing.key" });
  assert.deepEqual(sealing({ dir: "/var/lib/coco/node0" }), {
    kind: "file",
    keyFile: "/var/lib/coco/node0.sealing.key",
  });
  // A config file kept inside the node's directory still puts the key outside it.
  assert.deepEqual(sealing({ dir: "." }), { kind: "file", keyFile: "/srv/coco.sealing.key" });
  assert.deepEqual(sealing({ sealing: { keyFile: "keys/n0.key" } }), {
    kind: "file",
    keyFile: "/srv/coco/keys/n0.key",
  });
  refused({ sealing: { keyFile: "n0/sealing.key" } }, /sealing.keyFile: .* inside the node's directory/);
  refused({ sealing: { keyFile: "n0" } }, /inside the node's directory/);
  refused({ dir: "/" }, /config dir: the sealing key file .* would be inside/);
  refused(
    { sealing: { snp: { keyCommand: SNPGUEST } } },
    /sealing.snp: is only used with attestation platform "snp"/,
  );
});

test("snp: a derived-key program with every request field, the measurement always bound", () => {
  assert.deepEqual(sealing({ attestation: SNP, sealing: { snp: { keyCommand: SNPGUEST } } }), {
    kind: "snp",
    keyCommand: SNPGUEST,
    rootKey: "vcek",
    guestFieldSelect: 0b111001,
  });
  assert.deepEqual(
    sealing({
      attestation: SNP,
      sealing: {
        snp: {
          keyCommand: ["/opt/snp-key", "{request}", "{key}"],
          rootKey: "vmrk",
          guestFields: ["measurement", "image-id", "family-id"],
          vmpl: 2,
        },
      },
    }),
    {
      kind: "snp",
      keyCommand: ["/opt/snp-key", "{request}", "{key}"],
      rootKey: "vmrk",
      guestFieldSelect: 0b1110,
      vmpl: 2,
    },
  );
});

test("snp: a key file, a missing program, or a key not bound to the measurement is refused", () => {
  refused(
    { attestation: SNP, sealing: { keyFile: "/keys/n0.key", snp: { keyCommand: SNPGUEST } } },
    /sealing.keyFile: a node on SEV-SNP refuses to start with a file key/,
  );
  refused({ attestation: SNP }, /sealing.snp: is required with platform snp/);
  refused({ attestation: SNP, sealing: { snp: {} } }, /sealing.snp.keyCommand: must be a non-empty array/);
  refused(
    { attestation: SNP, sealing: { snp: { keyCommand: ["snpguest", "key", "{key}", "vcek"] } } },
    /sealing.snp.keyCommand: .*missing \{root-key\}, \{vmpl\}, \{guest-svn\}, \{tcb-version\}, \{guest-field-select\} or \{guest-field-select-bits\}/,
  );
  refused(
    { attestation: SNP, sealing: { snp: { keyCommand: SNPGUEST, guestFields: ["policy", "tcb-version"] } } },
    /guestFields: must include measurement/,
  );
  refused(
    { attestation: SNP, sealing: { snp: { keyCommand: SNPGUEST, guestFields: ["measurement", "chip-id"] } } },
    /guestFields: must be a list of: policy, image-id/,
  );
  refused(
    { attestation: SNP, sealing: { snp: { keyCommand: SNPGUEST, rootKey: "vlek" } } },
    /rootKey: must be "vcek" or "vmrk"/,
  );
  refused(
    { attestation: SNP, sealing: { snp: { keyCommand: SNPGUEST, vmpl: 4 } } },
    /vmpl: must be an integer from 0 to 3/,
  );
  refused(
    { attestation: SNP, sealing: { snp: { keyCommand: SNPGUEST, extra: 1 } } },
    /sealing.snp.extra: unknown setting/,
  );
});
