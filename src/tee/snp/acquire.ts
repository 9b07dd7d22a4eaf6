import { execFile } from "node:child_process";
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCertTable, type SnpCertTable } from "./certtable.ts";
import { SnpError } from "./errors.ts";
import { parseSnpReport, type SnpReport } from "./report.ts";

/** Where Linux (6.7 and later) exposes configfs-tsm report requests. */
export const CONFIGFS_TSM_REPORT = "/sys/kernel/config/tsm/report";

/** The file operations acquisition uses; tests swap in a fake kernel. */
export interface TsmFileSystem {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
}

const realFs: TsmFileSystem = {
  mkdir: async (path) => {
    await mkdir(path);
  },
  rmdir: (path) => rmdir(path),
  readFile: async (path) => new Uint8Array(await readFile(path)),
  writeFile: (path, data) => writeFile(path, data),
};

export interface SnpAcquireOptions {
  /** Up to 64 bytes bound into REPORT_DATA (zero-padded to 64). */
  reportData: Uint8Array;
  /** "configfs-tsm" (default) or "command" (an external tool that talks to /dev/sev-guest). */
  method?: "configfs-tsm" | "command";
  /** configfs-tsm: the report directory (default /sys/kernel/config/tsm/report). */
  tsmPath?: string;
  /** configfs-tsm: the VMPL to request (the `privlevel` attribute); left to the kernel if unset. */
  privlevel?: number;
  /** configfs-tsm: file operations (tests). */
  fs?: TsmFileSystem;
  /** configfs-tsm: randomness for the entry name (tests). */
  randomBytes?: (n: number) => Uint8Array;
  /**
   * command: the program and its arguments. `{report-data}` is replaced by the path of a file
   * holding the 64 report-data bytes, `{report}` by the path the program must write the report to.
   * E.g. `{ file: "snpguest", args: ["report", "{report}", "{report-data}"] }`.
   */
  command?: { file: string; args: string[]; timeoutMs?: number };
}

export interface SnpAcquired {
  bytes: Uint8Array;
  report: SnpReport;
  source: "configfs-tsm" | "command";
  /** The certificates the host attached (configfs-tsm `auxblob`), when it attached any. */
  certificates?: SnpCertTable;
}

function padReportData(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array) || data.length > 64) {
    throw new SnpError(
      "bad-input",
      `report data must be at most 64 bytes, got ${(data as Uint8Array)?.length}`,
    );
  }
  const out = new Uint8Array(64);
  out.set(data);
  return out;
}

function checkedReport(bytes: Uint8Array, where: string): SnpReport {
  try {
    return parseSnpReport(bytes);
  } catch (e) {
    throw new SnpError("acquire-failed", `${where} returned an unusable report: ${(e as Error).message}`);
  }
}

async function readText(fs: TsmFileSystem, path: string): Promise<string> {
  return Buffer.from(await fs.readFile(path))
    .toString("utf8")
    .trim();
}

function fail(what: string, e: unknown): never {
  if (e instanceof SnpError) throw e;
  throw new SnpError("acquire-failed", `configfs-tsm: ${what}: ${(e as Error).message}`);
}

/**
 * configfs-tsm: create a fresh report entry, write the report data, read the report back, and
 * remove the entry. `generation` counts writes to the entry's inputs: if it moved by more than our
 * own writes, another process wrote to the entry meanwhile and the report may not be ours.
 */
async function viaConfigfs(reportData: Uint8Array, options: SnpAcquireOptions): Promise<SnpAcquired> {
  const fs = options.fs ?? realFs;
  const random = options.randomBytes ?? ((n: number) => new Uint8Array(nodeRandomBytes(n)));
  const base = options.tsmPath ?? CONFIGFS_TSM_REPORT;
  const entry = join(base, `coco-${Buffer.from(random(8)).toString("hex")}`);
  try {
    await fs.mkdir(entry);
  } catch (e) {
    fail(`cannot create ${entry} (is this an SEV-SNP guest with configfs-tsm mounted?)`, e);
  }
  try {
    const provider = await readText(fs, join(entry, "provider")).catch((e) =>
      fail("cannot read provider", e),
    );
    if (provider !== "sev_guest") {
      throw new SnpError(
        "acquire-failed",
        `configfs-tsm provider is ${JSON.stringify(provider)}, not sev_guest`,
      );
    }
    const before = Number(
      await readText(fs, join(entry, "generation")).catch((e) => fail("cannot read generation", e)),
    );
    let writes = 0;
    if (options.privlevel !== undefined) {
      await fs
        .writeFile(join(entry, "privlevel"), `${options.privlevel}\n`)
        .catch((e) => fail("cannot write privlevel", e));
      writes++;
    }
    await fs.writeFile(join(entry, "inblob"), reportData).catch((e) => fail("cannot write inblob", e));
    writes++;
    const bytes = await fs.readFile(join(entry, "outblob")).catch((e) => fail("cannot read outblob", e));
    const aux = await fs.readFile(join(entry, "auxblob")).catch(() => undefined);
    const after = Number(
      await readText(fs, join(entry, "generation")).catch((e) => fail("cannot read generation", e)),
    );
    if (!Number.isInteger(before) || after !== before + writes) {
      throw new SnpError(
        "acquire-failed",
        `configfs-tsm generation went from ${before} to ${after} for our ${writes} write(s): another writer raced us`,
      );
    }
    const report = checkedReport(bytes, "configfs-tsm");
    if (report.reportData !== Buffer.from(reportData).toString("hex")) {
      throw new SnpError("acquire-failed", "configfs-tsm returned a report for different report data");
    }
    const out: SnpAcquired = { bytes, report, source: "configfs-tsm" };
    if (aux && aux.length > 0) out.certificates = parseCertTable(aux);
    return out;
  } finally {
    await fs.rmdir(entry).catch(() => undefined);
  }
}

function run(file: string, args: string[], timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout, maxBuffer: 1 << 20 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = stderr.toString().trim() || error.message;
      reject(new SnpError("acquire-failed", `report command ${file} failed: ${why}`));
    });
  });
}

/**
 * An external tool (e.g. `snpguest report`) that issues the SNP_GET_REPORT ioctl on
 * /dev/sev-guest, which Node cannot do without native code. Runs without a shell.
 */
async function viaCommand(reportData: Uint8Array, options: SnpAcquireOptions): Promise<SnpAcquired> {
  const command = options.command;
  if (!command || typeof command.file !== "string" || !Array.isArray(command.args)) {
    throw new SnpError("bad-input", "the command method needs command: { file, args }");
  }
  const dir = await mkdtemp(join(tmpdir(), "coco-snp-"));
  try {
    const dataPath = join(dir, "report-data.bin");
    const reportPath = join(dir, "report.bin");
    await writeFile(dataPath, reportData);
    const args = command.args.map((a) =>
      a.replaceAll("{report-data}", dataPath).replaceAll("{report}", reportPath),
    );
    await run(command.file, args, command.timeoutMs ?? 30_000);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(reportPath));
    } catch {
      throw new SnpError("acquire-failed", `report command ${command.file} wrote no report to {report}`);
    }
    const report = checkedReport(bytes, `report command ${command.file}`);
    if (report.reportData !== Buffer.from(reportData).toString("hex")) {
      throw new SnpError(
        "acquire-failed",
        `report command ${command.file} returned a report for different report data`,
      );
    }
    return { bytes, report, source: "command" };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Asks the platform for a fresh attestation report binding `reportData`. */
export async function acquireSnpReport(options: SnpAcquireOptions): Promise<SnpAcquired> {
  const reportData = padReportData(options.reportData);
  const method = options.method ?? "configfs-tsm";
  if (method === "configfs-tsm") return viaConfigfs(reportData, options);
  if (method === "command") return viaCommand(reportData, options);
  throw new SnpError("bad-input", `unknown acquisition method ${JSON.stringify(method)}`);
}
