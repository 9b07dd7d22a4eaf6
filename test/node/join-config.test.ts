// The node config's `attestation` section: virtual by default, SNP with a report source and
// endorsements, and clear errors naming the setting that is wrong.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, parseConfig } from "../../src/node/index.ts";

const BASE = { dir: "n0", members: [{ cert: "member0_cert.pem" }] };

/** An SNP node must also say how it gets its sealing key (test/node/sealing-config.test.ts). */
const SNP_SEALING = { snp: { keyCommand: ["/usr/bin/snp-derived-key", "{request}", "{key}"] } };

function attestation(section: unknown) {
  const snp = (section as { platform?: string } | null)?.platform === "snp";
  return parseConfig({ ...BASE, attestation: section, ...(snp ? { sealing: SNP_SEALING } : {}) }, "/srv/coco")
    .attestation;
}

function refused(section: unknown, pattern: RegExp): void {
  assert.throws(
    () => attestation(section),
    (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    JSON.stringify(section),
  );
}

test("without an attestation section a node is virtual", () => {
  assert.deepEqual(parseConfig(BASE, "/srv/coco").attestation, { platform: "virtual" });
  assert.deepEqual(attestation({ platform: "virtual" }), { platform: "virtual" });
});

test("snp: configfs-tsm by default, endorsement paths resolved from the config's folder", () => {
  assert.deepEqual(attestation({ platform: "snp", snp: { endorsements: { file: "amd/chain.pem" } } }), {
    platform: "snp",
    snp: {
      reportSource: { configfsTsm: "/sys/kernel/config/tsm/report" },
      endorsements: { file: "/srv/coco/amd/chain.pem" },
    },
  });
  const kds = attestation({
    platform: "snp",
    snp: {
      reportSource: { command: ["/usr/bin/snpguest", "report", "{report}", "{report-data}"] },
      endorsements: { kdsUrl: "https://kdsintf.amd.com", cacheDir: "cache", dir: "/etc/amd" },
    },
  });
  assert.deepEqual(kds.snp, {
    reportSource: { command: ["/usr/bin/snpguest", "report", "{report}", "{report-data}"] },
    endorsements: { dir: "/etc/amd", kdsUrl: "https://kdsintf.amd.com", cacheDir: "/srv/coco/cache" },
  });
});

test("mistakes are refused, naming the setting", () => {
  const endorsements = { file: "chain.pem" };
  refused({ platform: "sgx" }, /attestation.platform: must be "virtual" or "snp"/);
  refused({ platform: "virtual", snp: {} }, /attestation.snp: is only used with platform "snp"/);
  refused({ platform: "snp" }, /attestation.snp: is required with platform snp/);
  refused({ platform: "snp", snp: {} }, /attestation.snp.endorsements: is required/);
  refused({ platform: "snp", snp: { endorsements: {} } }, /must give at least one of file, dir or kdsUrl/);
  refused(
    { platform: "snp", snp: { endorsements: { file: "a", cacheDir: "c" } } },
    /cacheDir: only caches what kdsUrl fetches/,
  );
  refused(
    { platform: "snp", snp: { endorsements: { kdsUrl: "ftp://x" } } },
    /kdsUrl: must be an http\(s\) URL/,
  );
  refused(
    { platform: "snp", snp: { reportSource: {}, endorsements } },
    /reportSource: must name exactly one of configfsTsm/,
  );
  refused(
    { platform: "snp", snp: { reportSource: { configfsTsm: "tsm" }, endorsements } },
    /configfsTsm: must be an absolute path/,
  );
  refused(
    { platform: "snp", snp: { reportSource: { command: ["snpguest", "report"] }, endorsements } },
    /command: its arguments must contain \{report\}/,
  );
  refused({ platform: "snp", snp: { reportSource: { command: [] }, endorsements } }, /non-empty array/);
  refused({ platform: "snp", snp: { endorsements, extra: 1 } }, /attestation.snp.extra: unknown setting/);
  refused({ platform: "snp", trustedRoots: ["x"] }, /attestation.trustedRoots: unknown setting/);
});
