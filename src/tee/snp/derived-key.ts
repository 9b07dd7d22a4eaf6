// SEV-SNP derived keys: MSG_KEY_REQ, which Linux exposes as the SNP_GET_DERIVED_KEY ioctl on
// /dev/sev-guest. Node cannot issue an ioctl, and configfs-tsm serves reports only, so the key
// comes from a program the operator names (snpguest's `key` subcommand, or any equivalent), run
// without a shell. Tests replace the program with an in-process function (see SnpKeySource).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SnpError } from "./errors.ts";

/**
 * GUEST_FIELD_SELECT bits of MSG_KEY_REQ (SEV-SNP firmware ABI): each set bit mixes that field of
 * the running guest into the derived key. Bit 6 needs message version 2 firmware.
 */
export const SNP_GUEST_FIELDS = {
  policy: 1 << 0,
  "image-id": 1 << 1,
  "family-id": 1 << 2,
  measurement: 1 << 3,
  "guest-svn": 1 << 4,
  "tcb-version": 1 << 5,
  "launch-mit-vector": 1 << 6,
} as const;
export type SnpGuestField = keyof typeof SNP_GUEST_FIELDS;

/** The root key a derived key comes from: VCEK (chip and TCB unique) or VMRK (the VM root key). */
export type SnpRootKey = "vcek" | "vmrk";

/**
 * One MSG_KEY_REQ (Linux `struct snp_derived_key_req`, 32 bytes little-endian):
 *   0x00 u32 ROOT_KEY_SELECT (bit 0: 0 = VCEK, 1 = VMRK) | 0x04 u32 reserved (0)
 *   0x08 u64 GUEST_FIELD_SELECT | 0x10 u32 VMPL (>= the guest's current VMPL)
 *   0x14 u32 GUEST_SVN (<= the SVN in the launch ID block) | 0x18 u64 TCB_VERSION (<= CommittedTcb)
 */
export interface SnpKeyRequest {
  rootKey: SnpRootKey;
  guestFieldSelect: number;
  vmpl: number;
  guestSvn: number;
  /** TCB_VERSION as the little-endian u64 of its 8 bytes (the report's `u64` form). */
  tcbVersion: bigint;
}

export const SNP_KEY_REQUEST_SIZE = 32;
export const SNP_DERIVED_KEY_SIZE = 32;
const ALL_FIELDS = Object.values(SNP_GUEST_FIELDS).reduce((a, b) => a | b, 0);

/** Refuses a request the firmware would refuse for its shape (the firmware checks the values). */
export function checkSnpKeyRequest(request: SnpKeyRequest): void {
  const bad = (what: string) => {
    throw new SnpError("bad-input", `derived-key request: ${what}`);
  };
  if (request.rootKey !== "vcek" && request.rootKey !== "vmrk") bad('rootKey must be "vcek" or "vmrk"');
  const gfs = request.guestFieldSelect;
  if (!Number.isInteger(gfs) || gfs < 0 || (gfs & ~ALL_FIELDS) !== 0) {
    bad(`guestFieldSelect ${gfs} sets bits other than 0 to 6`);
  }
  if (!Number.isInteger(request.vmpl) || request.vmpl < 0 || request.vmpl > 3) bad("vmpl must be 0 to 3");
  if (!Number.isInteger(request.guestSvn) || request.guestSvn < 0 || request.guestSvn > 0xffffffff) {
    bad("guestSvn must be a u32");
  }
  if (typeof request.tcbVersion !== "bigint" || request.tcbVersion < 0n || request.tcbVersion >= 1n << 64n) {
    bad("tcbVersion must be a u64");
  }
}

/** The request in the firmware's (and the ioctl's) byte layout. */
export function encodeSnpKeyRequest(request: SnpKeyRequest): Uint8Array {
  checkSnpKeyRequest(request);
  const bytes = new Uint8Array(SNP_KEY_REQUEST_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0x00, request.rootKey === "vmrk" ? 1 : 0, true);
  view.setBigUint64(0x08, BigInt(request.guestFieldSelect), true);
  view.setUint32(0x10, request.vmpl, true);
  view.setUint32(0x14, request.guestSvn, true);
  view.setBigUint64(0x18, request.tcbVersion, true);
  return bytes;
}

/** The names of the fields a GUEST_FIELD_SELECT mixes in. */
export function snpGuestFieldNames(select: number): SnpGuestField[] {
  return (Object.keys(SNP_GUEST_FIELDS) as SnpGuestField[]).filter(
    (f) => (select & SNP_GUEST_FIELDS[f]) !== 0,
  );
}

/** Asks the platform for the 32-byte key a request names. */
export type SnpKeySource = (request: SnpKeyRequest) => Promise<Uint8Array>;

/** Placeholders a derived-key command's arguments may hold (see snpKeyCommandArgs). */
export const SNP_KEY_PLACEHOLDERS = [
  "{key}",
  "{request}",
  "{root-key}",
  "{guest-field-select}",
  "{guest-field-select-bits}",
  "{vmpl}",
  "{guest-svn}",
  "{tcb-version}",
] as const;

/**
 * A command must be given every value of the request, either whole (`{request}`: a file holding
 * the 32-byte MSG_KEY_REQ) or field by field; otherwise a tool's own defaults would choose, say, a
 * key that does not mix in the measurement.
 */
export function snpKeyCommandProblem(argv: string[]): string | undefined {
  const args = argv.slice(1).join(" ");
  if (args.includes("{request}")) return undefined;
  const missing = ["{root-key}", "{vmpl}", "{guest-svn}", "{tcb-version}"].filter((p) => !args.includes(p));
  if (!args.includes("{guest-field-select}") && !args.includes("{guest-field-select-bits}")) {
    missing.push("{guest-field-select} or {guest-field-select-bits}");
  }
  return missing.length === 0
    ? undefined
    : `its arguments must pass the whole request ({request}) or every field of it; missing ${missing.join(", ")}`;
}

/** The arguments with every placeholder but {key} and {request} filled in. */
export function snpKeyCommandArgs(args: string[], request: SnpKeyRequest): string[] {
  const gfs = request.guestFieldSelect;
  // snpguest 0.7 to 0.9 read the selection as a 6-digit binary string (bit 5 leftmost).
  const bits = gfs.toString(2).padStart(gfs >= 1 << 6 ? 7 : 6, "0");
  return args.map((a) =>
    a
      .replaceAll("{root-key}", request.rootKey)
      .replaceAll("{guest-field-select-bits}", bits)
      .replaceAll("{guest-field-select}", String(gfs))
      .replaceAll("{vmpl}", String(request.vmpl))
      .replaceAll("{guest-svn}", String(request.guestSvn))
      .replaceAll("{tcb-version}", request.tcbVersion.toString()),
  );
}

function run(file: string, args: string[], timeout: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout, maxBuffer: 1 << 16, encoding: "buffer" }, (error, stdout, stderr) => {
      if (!error) return resolve(new Uint8Array(stdout));
      const why = Buffer.from(stderr).toString("utf8").trim().slice(0, 500) || error.message;
      reject(new SnpError("acquire-failed", `derived-key command ${file} failed: ${why}`));
    });
  });
}

/**
 * A key source that runs `argv` (program, then arguments) for each request. The program writes
 * the 32-byte key to the file `{key}` names (inside a fresh 0700 directory, on /dev/shm when there
 * is one, so the key need not touch a disk; removed at once) or, without `{key}`, to its standard
 * output. Exactly 32 bytes are accepted, and never 32 zero bytes.
 */
export function snpKeyCommand(
  argv: string[],
  options: { timeoutMs?: number; tmpDir?: string } = {},
): SnpKeySource {
  if (
    !Array.isArray(argv) ||
    argv.length === 0 ||
    !argv.every((a) => typeof a === "string" && a.length > 0)
  ) {
    throw new SnpError("bad-input", "a derived-key command is a non-empty list of non-empty strings");
  }
  const problem = snpKeyCommandProblem(argv);
  if (problem) throw new SnpError("bad-input", `derived-key command: ${problem}`);
  const [file, ...template] = argv as [string, ...string[]];
  return async (request) => {
    const encoded = encodeSnpKeyRequest(request);
    const base = options.tmpDir ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());
    const dir = await mkdtemp(join(base, "coco-snp-key-"));
    let key: Uint8Array | undefined;
    try {
      const keyPath = join(dir, "derived.key");
      const requestPath = join(dir, "request.bin");
      await writeFile(requestPath, encoded, { mode: 0o600 });
      const args = snpKeyCommandArgs(template, request).map((a) =>
        a.replaceAll("{key}", keyPath).replaceAll("{request}", requestPath),
      );
      const stdout = await run(file, args, options.timeoutMs ?? 30_000);
      if (template.some((a) => a.includes("{key}"))) {
        try {
          key = new Uint8Array(await readFile(keyPath));
        } catch {
          throw new SnpError("acquire-failed", `derived-key command ${file} wrote no key to {key}`);
        }
        await writeFile(keyPath, new Uint8Array(key.length));
      } else {
        key = stdout;
      }
      if (key.length !== SNP_DERIVED_KEY_SIZE) {
        throw new SnpError(
          "acquire-failed",
          `derived-key command ${file} gave ${key.length} bytes; a derived key is ${SNP_DERIVED_KEY_SIZE}`,
        );
      }
      if (key.every((b) => b === 0)) {
        throw new SnpError("acquire-failed", `derived-key command ${file} gave an all-zero key`);
      }
      return key;
    } catch (e) {
      key?.fill(0);
      throw e;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}
