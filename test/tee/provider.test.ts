// A node attesting itself: a simulated configfs-tsm (a temporary directory laid out like
// /sys/kernel/config/tsm/report) answering with a real vector report or with one a fake AMD signs
// for the requested report data, and an external report command.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { generateP384KeyPair } from "../../src/crypto/index.ts";
import {
  attestationProvider,
  checkNodeAttestation,
  codeMeasurement,
  keyReportData,
  SnpError,
  snpPolicyFromTables,
  type TsmFileSystem,
  virtualAttestation,
} from "../../src/tee/index.ts";
import { fakeSnpNodeFiles, makeFakeAmd } from "./fake-amd.ts";
import { fakeReport } from "./fake-report.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const ROOT = mkdtempSync(join(tmpdir(), "coco-provider-"));
after(() => rmSync(ROOT, { recursive: true, force: true }));

const MEASUREMENT = "77".repeat(48);
const HOST_DATA = "88".repeat(32);
const amd = await makeFakeAmd();
const node = generateP384KeyPair();
const chainFile = join(ROOT, "chain.pem");
writeFileSync(chainFile, amd.chainPem);

/**
 * configfs-tsm in a temporary directory: mkdir fills a new entry from the template (provider,
 * generation); writing inblob bumps generation and, through `answer`, sets outblob.
 */
function simulatedTsm(answer: (inblob: Uint8Array) => Uint8Array) {
  const base = mkdtempSync(join(ROOT, "tsm-"));
  const template = mkdtempSync(join(ROOT, "template-"));
  writeFileSync(join(template, "provider"), "sev_guest\n");
  writeFileSync(join(template, "generation"), "0\n");
  const fs: TsmFileSystem = {
    mkdir: async (path) => {
      await mkdir(path);
      cpSync(template, path, { recursive: true });
    },
    rmdir: (path) => rm(path, { recursive: true }),
    readFile: async (path) => new Uint8Array(await readFile(path)),
    writeFile: async (path, data) => {
      await writeFile(path, data);
      if (path.endsWith("/inblob")) {
        await writeFile(join(path, "..", "outblob"), answer(new Uint8Array(Buffer.from(data as Uint8Array))));
        const generation = join(path, "..", "generation");
        await writeFile(generation, `${Number((await readFile(generation, "utf8")).trim()) + 1}\n`);
      }
    },
  };
  return { base, fs };
}

function policy() {
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const { policy: snp } = snpPolicyFromTables({
    measurements: [[MEASUREMENT, json("AllowedToJoin")]],
    hostData: [[HOST_DATA, json("")]],
    tcbVersions: [["00a00f11", json({ boot_loader: 4, tee: 0, snp: 24, microcode: 219 })]],
  });
  return { virtualMeasurements: [codeMeasurement()], snp };
}

test("virtual: the code measurement and the key binding, nothing more", async () => {
  const provider = attestationProvider({ platform: "virtual" });
  assert.equal(provider.platform, "virtual");
  assert.deepEqual(await provider.attest(node.publicKeyPem), virtualAttestation(node.publicKeyPem));
});

test("snp via configfs-tsm: a real vector report cannot carry our key, so attesting fails, naming why", async (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const vector = new Uint8Array(readFileSync(`${VECTORS}/ccf-milan/report.bin`));
  const tsm = simulatedTsm(() => vector);
  const provider = attestationProvider(
    { platform: "snp", snp: { reportSource: { configfsTsm: tsm.base }, endorsements: { file: chainFile } } },
    { tsmFs: tsm.fs },
  );
  await assert.rejects(
    provider.attest(node.publicKeyPem),
    (e: unknown) => e instanceof SnpError && /report for different report data/.test(e.message),
  );
});

test("snp via configfs-tsm: the report binds the key and the configured chain endorses it", async () => {
  let asked: Uint8Array | undefined;
  const tsm = simulatedTsm((inblob) => {
    asked = inblob;
    return fakeReport(amd.vcekKeyPem, { reportData: inblob, measurement: MEASUREMENT, hostData: HOST_DATA });
  });
  const provider = attestationProvider(
    { platform: "snp", snp: { reportSource: { configfsTsm: tsm.base }, endorsements: { file: chainFile } } },
    { tsmFs: tsm.fs },
  );
  const attestation = await provider.attest(node.publicKeyPem);
  assert.deepEqual(asked, keyReportData(node.publicKeyPem), "inblob is SHA-256(SPKI) then 32 zero bytes");
  assert.equal(attestation.format, "snp");
  const verdict = checkNodeAttestation(attestation, node.publicKeyPem, policy(), {
    now: Date.now(),
    platform: "snp",
    trustedRoots: [amd.arkPem],
  });
  assert.equal(verdict.ok, true, (verdict as { reason?: string }).reason);
});

test("snp via a report command (like snpguest): the tool signs for the report data it is given", async () => {
  const files = fakeSnpNodeFiles(amd, { measurement: MEASUREMENT, hostData: HOST_DATA });
  try {
    const provider = attestationProvider({
      platform: "snp",
      snp: { reportSource: { command: files.command }, endorsements: { file: files.chainFile } },
    });
    const attestation = await provider.attest(node.publicKeyPem);
    const verdict = checkNodeAttestation(attestation, node.publicKeyPem, policy(), {
      now: Date.now(),
      platform: "snp",
      trustedRoots: [amd.arkPem],
    });
    assert.equal(verdict.ok, true, (verdict as { reason?: string }).reason);
  } finally {
    rmSync(files.dir, { recursive: true, force: true });
  }
});

test("snp: a missing endorsement file is an SnpError naming the file", async () => {
  const tsm = simulatedTsm((inblob) =>
    fakeReport(amd.vcekKeyPem, { reportData: inblob, measurement: MEASUREMENT, hostData: HOST_DATA }),
  );
  const missing = join(ROOT, "no-such-chain.pem");
  const provider = attestationProvider(
    { platform: "snp", snp: { reportSource: { configfsTsm: tsm.base }, endorsements: { file: missing } } },
    { tsmFs: tsm.fs },
  );
  await assert.rejects(
    provider.attest(node.publicKeyPem),
    new RegExp(`cannot read endorsement file ${missing}`),
  );
});
