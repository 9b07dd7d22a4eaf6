import { readFileSync } from "node:fs";
import {
  parseSnpReport,
  type SnpProduct,
  type SnpReport,
  type SnpTcb,
  type SnpVerification,
  snpReportFields,
  verifySnpReport,
} from "../tee/index.ts";

/** Exit codes of `coco attestation`: 0 valid, 1 invalid, 2 bad usage or unreadable input. */
export const EXIT_VALID = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

export interface VerifyOptions {
  chain?: string;
  crl?: string;
  product?: string;
  measurement?: string;
  reportData?: string;
  json?: boolean;
}

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

class UsageError extends Error {}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

function loadReport(path: string): SnpReport {
  const bytes = readInput(path, "report");
  try {
    return parseSnpReport(new Uint8Array(bytes));
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
}

function tcbText(t: SnpTcb): string {
  const fmc = t.fmc === undefined ? "" : `fmc ${t.fmc}, `;
  return `${fmc}bootloader ${t.bootloader}, tee ${t.tee}, snp ${t.snp}, microcode ${t.microcode} (${t.hex})`;
}

/** The decoded fields a person checks first, one per line. */
export function describeReport(r: SnpReport): string[] {
  const p = r.policy;
  const flags = [
    p.debugAllowed ? "DEBUG ALLOWED" : "no debug",
    p.migrateMaAllowed ? "migration agent allowed" : "no migration agent",
    p.smtAllowed ? "SMT allowed" : "no SMT",
    ...(p.singleSocketRequired ? ["single socket"] : []),
  ];
  const cpu = r.cpuid
    ? `family 0x${r.cpuid.family.toString(16)} model 0x${r.cpuid.model.toString(16)} stepping ${r.cpuid.stepping}${r.cpuidProduct ? ` (${r.cpuidProduct})` : ""}`
    : "not in a v2 report";
  const v = (x: { major: number; minor: number; build: number }) => `${x.major}.${x.minor}.${x.build}`;
  return [
    `version:          ${r.version}`,
    `measurement:      ${r.measurement}`,
    `report data:      ${r.reportData}`,
    `host data:        ${r.hostData}`,
    `policy:           ${p.raw} (ABI ${p.abiMajor}.${p.abiMinor}; ${flags.join(", ")})`,
    `vmpl:             ${r.vmpl}`,
    `guest svn:        ${r.guestSvn}`,
    `signing key:      ${r.signingKey.toUpperCase()}${r.maskChipKey ? " (MASK_CHIP_KEY)" : ""}`,
    `cpu:              ${cpu}`,
    `chip id:          ${r.chipIdMasked ? "masked" : r.chipId}`,
    `reported tcb:     ${tcbText(r.reportedTcb)}`,
    `current tcb:      ${tcbText(r.currentTcb)}`,
    `committed tcb:    ${tcbText(r.committedTcb)}`,
    `launch tcb:       ${tcbText(r.launchTcb)}`,
    `firmware:         current ${v(r.currentVersion)}, committed ${v(r.committedVersion)}`,
    `platform info:    ${r.platformInfo.raw}${r.platformInfo.smtEnabled ? " (SMT on)" : ""}${r.platformInfo.tsmeEnabled ? " (TSME on)" : ""}`,
    `id key digest:    ${r.idKeyDigest}`,
    `author key:       ${r.authorKeyEn ? r.authorKeyDigest : "none"}`,
    `report id:        ${r.reportId}`,
  ];
}

function checkLines(v: SnpVerification): string[] {
  return v.checks.map((c) => `  ${c.skipped ? "skip" : c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
}

function product(value: string | undefined): SnpProduct | undefined {
  if (value === undefined) return undefined;
  if (value === "Milan" || value === "Genoa" || value === "Turin") return value;
  throw new UsageError(`--product must be Milan, Genoa or Turin, not ${JSON.stringify(value)}`);
}

/** `coco attestation verify`: returns the exit code. Uses the real clock for certificate validity. */
export function verifyAttestation(file: string, opts: VerifyOptions, io: Io): number {
  try {
    const report = loadReport(file);
    const chain = opts.chain === undefined ? undefined : readInput(opts.chain, "chain").toString("utf8");
    const crlBytes = opts.crl === undefined ? undefined : readInput(opts.crl, "CRL");
    const crl =
      crlBytes === undefined
        ? undefined
        : crlBytes.includes("-----BEGIN")
          ? crlBytes.toString("utf8")
          : new Uint8Array(crlBytes);
    const wanted = product(opts.product);
    let result: SnpVerification;
    try {
      result = verifySnpReport(report, {
        ...(chain === undefined ? {} : { chain }),
        ...(crl === undefined ? {} : { crl }),
        ...(wanted === undefined ? {} : { product: wanted }),
        ...(opts.measurement === undefined ? {} : { expectedMeasurement: opts.measurement }),
        ...(opts.reportData === undefined ? {} : { expectedReportData: opts.reportData }),
        now: Date.now(),
      });
    } catch (e) {
      // Only malformed expected values throw here (bad hex or length).
      throw new UsageError((e as Error).message);
    }
    if (opts.json) {
      const { report: _r, ...verdict } = result;
      io.out(JSON.stringify({ report: snpReportFields(report), verification: verdict }));
    } else {
      for (const line of describeReport(report)) io.out(line);
      io.out("checks:");
      for (const line of checkLines(result)) io.out(line);
      if (result.ok) io.out(`attestation OK${result.product ? ` (${result.product})` : ""}`);
      else io.err(`attestation INVALID: ${result.failed.join(", ")} failed`);
    }
    return result.ok ? EXIT_VALID : EXIT_INVALID;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`coco attestation: ${e.message}`);
    return EXIT_USAGE;
  }
}

/** `coco attestation show`: decode a report without verifying it. */
export function showAttestation(file: string, opts: { json?: boolean }, io: Io): number {
  try {
    const report = loadReport(file);
    if (opts.json) io.out(JSON.stringify(snpReportFields(report)));
    else for (const line of describeReport(report)) io.out(line);
    return EXIT_VALID;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`coco attestation: ${e.message}`);
    return EXIT_USAGE;
  }
}
