import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseSnpReport, SNP_REPORT_SIZE, SnpError, snpReportFields } from "../../src/tee/index.ts";

/** A report-shaped buffer: version, ECDSA algorithm and the given bytes set, the rest zero. */
function blank(version = 3, set: Record<number, number[]> = {}): Uint8Array {
  const bytes = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0x000, version, true);
  view.setUint32(0x034, 1, true);
  for (const [at, values] of Object.entries(set)) bytes.set(values, Number(at));
  return bytes;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SnpError, `expected SnpError, got ${e}`);
    return e.code;
  }
  assert.fail("expected an SnpError");
}

test("wrong sizes are refused with bad-size", () => {
  assert.equal(
    code(() => parseSnpReport(new Uint8Array(0))),
    "bad-size",
  );
  assert.equal(
    code(() => parseSnpReport(blank().subarray(0, 1183))),
    "bad-size",
  );
  assert.equal(
    code(() => parseSnpReport(new Uint8Array(1185))),
    "bad-size",
  );
  assert.match(
    (() => {
      try {
        parseSnpReport(new Uint8Array(100));
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    /1184 bytes; this one is 100/,
  );
});

test("versions outside 2..5 are refused with unsupported-version", () => {
  for (const v of [0, 1, 6, 0xffffffff])
    assert.equal(
      code(() => parseSnpReport(blank(v))),
      "unsupported-version",
      `v${v}`,
    );
  for (const v of [2, 3, 4, 5]) assert.equal(parseSnpReport(blank(v)).version, v);
});

test("a signature algorithm other than ECDSA P-384 is refused", () => {
  for (const algo of [0, 2, 0x100]) {
    const bytes = blank();
    new DataView(bytes.buffer).setUint32(0x034, algo, true);
    assert.equal(
      code(() => parseSnpReport(bytes)),
      "unsupported-signature-algorithm",
    );
  }
});

test("policy bits decode at their ABI positions", () => {
  // ABI 1.51, SMT, reserved bit 17, debug (19), single socket (20), page-swap disable (25).
  const policy = 0x33 | (0x01 << 8) | (1 << 16) | (1 << 17) | (1 << 19) | (1 << 20) | (1 << 25);
  const bytes = blank(3);
  new DataView(bytes.buffer).setBigUint64(0x008, BigInt(policy), true);
  const p = parseSnpReport(bytes).policy;
  assert.deepEqual(
    { ...p },
    {
      raw: `0x${policy.toString(16).padStart(16, "0")}`,
      abiMinor: 0x33,
      abiMajor: 1,
      smtAllowed: true,
      reservedOne: true,
      migrateMaAllowed: false,
      debugAllowed: true,
      singleSocketRequired: true,
      cxlAllowed: false,
      memAes256Xts: false,
      raplDisabled: false,
      ciphertextHiding: false,
      pageSwapDisabled: true,
    },
  );
});

test("key info: author key, mask chip key and the signing key names", () => {
  const withKeyInfo = (value: number) => {
    const bytes = blank();
    new DataView(bytes.buffer).setUint32(0x048, value, true);
    return parseSnpReport(bytes);
  };
  assert.equal(withKeyInfo(0).signingKey, "vcek");
  assert.equal(withKeyInfo(1 << 2).signingKey, "vlek");
  assert.equal(withKeyInfo(7 << 2).signingKey, "none");
  assert.equal(withKeyInfo(3 << 2).signingKey, "reserved");
  const r = withKeyInfo(0b11 | (1 << 2));
  assert.equal(r.authorKeyEn, true);
  assert.equal(r.maskChipKey, true);
  assert.equal(r.signingKeyRaw, 1);
});

test("Milan/Genoa TCB layout: [bootloader, tee, 0,0,0,0, snp, microcode]", () => {
  const r = parseSnpReport(blank(3, { 392: [0x19, 0x11, 0x01], 384: [10, 1, 0, 0, 0, 0, 23, 84] }));
  assert.equal(r.cpuidProduct, "Genoa");
  assert.deepEqual(
    { ...r.reportedTcb },
    { bootloader: 10, tee: 1, snp: 23, microcode: 84, hex: "0a01000000001754", u64: "0x541700000000010a" },
  );
  assert.equal(r.reportedTcb.fmc, undefined);
});

test("Turin (family 0x1A) TCB layout: [fmc, bootloader, tee, snp, 0,0,0, microcode] in every TCB field", () => {
  const tcb = [3, 4, 1, 9, 0, 0, 0, 77];
  const r = parseSnpReport(blank(5, { 392: [0x1a, 0x02, 0x00], 56: tcb, 384: tcb, 480: tcb, 496: tcb }));
  assert.equal(r.cpuidProduct, "Turin");
  for (const t of [r.currentTcb, r.reportedTcb, r.committedTcb, r.launchTcb]) {
    assert.deepEqual(
      { fmc: t.fmc, bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode },
      { fmc: 3, bootloader: 4, tee: 1, snp: 9, microcode: 77 },
    );
  }
});

test("v5 mitigation vectors are read; earlier versions have none", () => {
  const set = { 504: [1, 2, 0, 0, 0, 0, 0, 0x80], 512: [0xff] };
  const v5 = parseSnpReport(blank(5, set));
  assert.equal(v5.launchMitVector, "0x8000000000000201");
  assert.equal(v5.currentMitVector, "0x00000000000000ff");
  const v3 = parseSnpReport(blank(3, set));
  assert.equal(v3.launchMitVector, undefined);
  assert.equal(v3.currentMitVector, undefined);
});

test("v2 reports have no CPUID even when the reserved bytes are set", () => {
  const r = parseSnpReport(blank(2, { 392: [0x19, 0x01, 0x01] }));
  assert.equal(r.cpuid, undefined);
  assert.equal(r.cpuidProduct, undefined);
});

test("fields land at their offsets", () => {
  const fill = (at: number, n: number, b: number) => ({ [at]: Array(n).fill(b) });
  const r = parseSnpReport(
    blank(3, {
      4: [7],
      ...fill(0x010, 16, 0x11),
      ...fill(0x020, 16, 0x22),
      48: [2],
      ...fill(0x050, 64, 0x50),
      ...fill(0x090, 48, 0x90),
      ...fill(0x0c0, 32, 0xc0),
      ...fill(0x0e0, 48, 0xe0),
      ...fill(0x110, 48, 0x11),
      ...fill(0x140, 32, 0x14),
      ...fill(0x160, 32, 0x16),
      ...fill(0x1a0, 64, 0x1a),
      488: [40, 55, 1, 0, 39, 54, 1],
      672: [1, 2, 3],
      744: [4, 5, 6],
    }),
  );
  assert.equal(r.guestSvn, 7);
  assert.equal(r.familyId, "11".repeat(16));
  assert.equal(r.imageId, "22".repeat(16));
  assert.equal(r.vmpl, 2);
  assert.equal(r.reportData, "50".repeat(64));
  assert.equal(r.measurement, "90".repeat(48));
  assert.equal(r.hostData, "c0".repeat(32));
  assert.equal(r.idKeyDigest, "e0".repeat(48));
  assert.equal(r.authorKeyDigest, "11".repeat(48));
  assert.equal(r.reportId, "14".repeat(32));
  assert.equal(r.reportIdMa, "16".repeat(32));
  assert.equal(r.chipId, "1a".repeat(64));
  assert.deepEqual(r.currentVersion, { major: 1, minor: 55, build: 40 });
  assert.deepEqual(r.committedVersion, { major: 1, minor: 54, build: 39 });
  // Little-endian components come out big-endian.
  assert.equal(r.signature.r, `${"00".repeat(45)}030201`);
  assert.equal(r.signature.s, `${"00".repeat(45)}060504`);
});

test("a masked (all-zero) chip id is flagged", () => {
  assert.equal(parseSnpReport(blank()).chipIdMasked, true);
  assert.equal(parseSnpReport(blank(3, { 479: [1] })).chipIdMasked, false);
});

test("parsing copies its input and the printable fields omit the raw bytes", () => {
  const input = blank();
  const r = parseSnpReport(input);
  input[0x90] = 0xff;
  assert.equal(r.bytes[0x90], 0);
  const fields = snpReportFields(r);
  assert.equal("bytes" in fields, false);
  assert.doesNotThrow(() => JSON.stringify(fields));
});

test("property: any 1184 bytes either parse or fail with an SnpError, never anything else", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: SNP_REPORT_SIZE, maxLength: SNP_REPORT_SIZE }),
      fc.boolean(),
      (bytes, fix) => {
        if (fix) {
          // Half the runs get a valid version and algorithm so the decoders themselves are exercised.
          new DataView(bytes.buffer).setUint32(0, 2 + (bytes[1]! % 4), true);
          new DataView(bytes.buffer).setUint32(0x34, 1, true);
        }
        try {
          const r = parseSnpReport(bytes);
          assert.equal(r.measurement.length, 96);
          assert.equal(r.reportedTcb.hex.length, 16);
        } catch (e) {
          assert.ok(e instanceof SnpError);
          assert.ok(!fix);
        }
      },
    ),
    { numRuns: 300 },
  );
});
