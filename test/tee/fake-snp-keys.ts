// A model of one SEV-SNP guest as the sealing code sees it: its attestation reports (through an
// in-memory configfs-tsm) and the AMD secure processor's MSG_KEY_REQ, which derives a key from a
// root secret (VCEK or VMRK) mixed with the request and the running guest's selected fields, and
// refuses what the firmware refuses (a VMPL below the guest's, a guest SVN above the launch one, a
// TCB above the committed one). Real hardware derives differently; what matters for the tests is
// that the key depends on exactly what the firmware's depends on.
import { createHmac, generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import {
  encodeSnpKeyRequest,
  SNP_GUEST_FIELDS,
  type SnpKeyRequest,
  type SnpKeySource,
  type TsmFileSystem,
} from "../../src/tee/index.ts";
import { fakeReport, MILAN_TCB } from "./fake-report.ts";

export interface FakeSnpGuest {
  /** The chip's secret behind its VCEK (same chip, same secret). */
  chipSecret: Uint8Array;
  /** A VM root key, when a migration agent gave the guest one. */
  vmrk?: Uint8Array;
  measurement: string;
  policy: bigint;
  familyId: string;
  imageId: string;
  /** The guest SVN of the launch ID block. */
  guestSvn: number;
  /** CommittedTcb in report byte order (Milan layout). */
  committedTcb: number[];
  /** The VMPL the guest runs at. */
  vmpl: number;
}

export function fakeGuest(overrides: Partial<FakeSnpGuest> = {}): FakeSnpGuest {
  return {
    chipSecret: new Uint8Array(32).fill(0xc1),
    measurement: "5e".repeat(48),
    policy: 0x30000n,
    familyId: "00".repeat(16),
    imageId: "00".repeat(16),
    guestSvn: 2,
    committedTcb: [...MILAN_TCB],
    vmpl: 0,
    ...overrides,
  };
}

export class FirmwareRefusal extends Error {}

/** The guest's MSG_KEY_REQ, counting the requests it answers. */
export function fakeKeyFirmware(guest: FakeSnpGuest): SnpKeySource & { requests: SnpKeyRequest[] } {
  const requests: SnpKeyRequest[] = [];
  const source = async (request: SnpKeyRequest): Promise<Uint8Array> => {
    const encoded = encodeSnpKeyRequest(request);
    const refuse = (why: string) => {
      throw new FirmwareRefusal(`firmware status 0x16 (INVALID_PARAM): ${why}`);
    };
    if (request.vmpl < guest.vmpl) refuse("VMPL below the guest's");
    if (request.guestSvn > guest.guestSvn) refuse("GUEST_SVN above the launch SVN");
    const tcb = new Uint8Array(8);
    new DataView(tcb.buffer).setBigUint64(0, request.tcbVersion, true);
    if (tcb.some((level, i) => level > (guest.committedTcb[i] ?? 0)))
      refuse("TCB_VERSION above CommittedTcb");
    const root = request.rootKey === "vmrk" ? guest.vmrk : guest.chipSecret;
    if (!root) refuse("no VMRK for this guest");
    const mac = createHmac("sha256", root!).update(encoded);
    const gfs = request.guestFieldSelect;
    const policy = Buffer.alloc(8);
    policy.writeBigUInt64LE(guest.policy);
    if (gfs & SNP_GUEST_FIELDS.policy) mac.update(policy);
    if (gfs & SNP_GUEST_FIELDS["image-id"]) mac.update(Buffer.from(guest.imageId, "hex"));
    if (gfs & SNP_GUEST_FIELDS["family-id"]) mac.update(Buffer.from(guest.familyId, "hex"));
    if (gfs & SNP_GUEST_FIELDS.measurement) mac.update(Buffer.from(guest.measurement, "hex"));
    requests.push(request);
    return new Uint8Array(mac.digest());
  };
  return Object.assign(source, { requests });
}

const REPORT_KEY = generateKeyPairSync("ec", { namedCurve: "P-384" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();

/**
 * A report of this guest, signed by `vcekKeyPem` (a fake AMD's, for attestation) or by a throwaway
 * key (sealing reads its own reports for the TCB and guest SVN; it does not verify them).
 */
export function guestReport(
  guest: FakeSnpGuest,
  reportData: Uint8Array,
  vcekKeyPem = REPORT_KEY,
): Uint8Array {
  const bytes = fakeReport(vcekKeyPem, {
    reportData,
    measurement: guest.measurement,
    hostData: "00".repeat(32),
    policy: guest.policy,
    tcb: guest.committedTcb,
  });
  const view = new DataView(bytes.buffer);
  view.setUint32(0x004, guest.guestSvn, true);
  view.setUint32(0x030, guest.vmpl, true);
  return bytes;
}

/** An in-memory configfs-tsm that answers with this guest's reports. */
export function fakeTsm(guest: FakeSnpGuest, vcekKeyPem?: string): TsmFileSystem {
  const files = new Map<string, Uint8Array>();
  const text = (s: string) => new TextEncoder().encode(s);
  return {
    mkdir: async (path) => {
      files.set(`${path}/provider`, text("sev_guest\n"));
      files.set(`${path}/generation`, text("0\n"));
    },
    rmdir: async (path) => {
      for (const key of [...files.keys()]) if (key.startsWith(`${path}/`)) files.delete(key);
    },
    readFile: async (path) => {
      const data = files.get(path);
      if (!data) throw new Error(`ENOENT: ${path}`);
      return data;
    },
    writeFile: async (path, data) => {
      const bytes = typeof data === "string" ? text(data) : Uint8Array.from(data);
      files.set(path, bytes);
      if (basename(path) !== "inblob") return;
      const dir = dirname(path);
      files.set(`${dir}/outblob`, guestReport(guest, bytes, vcekKeyPem));
      const generation = Number(new TextDecoder().decode(files.get(`${dir}/generation`)).trim());
      files.set(`${dir}/generation`, text(`${generation + 1}\n`));
    },
  };
}

/** Sealing seams for a node running as this guest: derived keys, and its reports if `ownReports`. */
export function sealingSeams(guest: FakeSnpGuest, ownReports = true) {
  return {
    snpSealing: {
      deriveKey: fakeKeyFirmware(guest),
      ...(ownReports ? { report: async (data: Uint8Array) => guestReport(guest, data) } : {}),
    },
  };
}

/** A derived-key command for configs whose key source a seam replaces (it never runs). */
export const SEAM_KEY_COMMAND = ["/nonexistent/snp-derived-key", "{request}", "{key}"];

const TOOL = new URL("./fake-snp-key-tool.ts", import.meta.url).pathname;

/**
 * The argv of a snpguest-like program for this guest (its spec written to `specFile`): every
 * request field passed as a flag; the key to `{key}`, or to standard output with `stdout`.
 */
export function fakeKeyToolCommand(guest: FakeSnpGuest, specFile: string, stdout = false): string[] {
  writeFileSync(
    specFile,
    JSON.stringify({
      ...guest,
      chipSecret: Buffer.from(guest.chipSecret).toString("hex"),
      policy: guest.policy.toString(),
    }),
  );
  return [
    process.execPath,
    "--import",
    import.meta.resolve("tsx"),
    TOOL,
    specFile,
    stdout ? "-" : "{key}",
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
}
