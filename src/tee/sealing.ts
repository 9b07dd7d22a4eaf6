// Where a node's sealing key comes from. On SEV-SNP: a key the AMD secure processor derives for
// this guest (MSG_KEY_REQ), bound to its measurement, never stored. On the virtual platform: a
// random key file kept outside the node's directory, for development only.
import { createHash } from "node:crypto";
import { sealingKeyFrom } from "../crypto/index.ts";
import { type AttestationSettings, acquireOwnSnpReport, type ProviderSeams } from "./provider.ts";
import {
  encodeSnpKeyRequest,
  SNP_GUEST_FIELDS,
  type SnpKeyRequest,
  type SnpKeySource,
  type SnpRootKey,
  snpGuestFieldNames,
  snpKeyCommand,
} from "./snp/derived-key.ts";
import { parseSnpReport, type SnpReport } from "./snp/report.ts";

/** How a node seals its secrets (node config `sealing`, after validation). */
export type SealingSettings =
  | {
      kind: "file";
      /** The virtual platform's key file: never inside the node's directory. */
      keyFile: string;
    }
  | {
      kind: "snp";
      /** The program that asks for a derived key (see snpKeyCommand for its contract). */
      keyCommand: string[];
      rootKey: SnpRootKey;
      /** GUEST_FIELD_SELECT; always includes the measurement. */
      guestFieldSelect: number;
      /** The VMPL to mix in; by default the one this guest's reports carry. */
      vmpl?: number;
    };

/** The default fields an SNP sealing key mixes in: policy, measurement, guest SVN, TCB version. */
export const DEFAULT_SNP_SEALING_FIELDS: readonly (keyof typeof SNP_GUEST_FIELDS)[] = [
  "policy",
  "measurement",
  "guest-svn",
  "tcb-version",
];

/** What a sealed file records in clear so that the same derived key can be asked for again. */
export type SnpSealRecord = {
  source: "snp-derived-key";
  rootKey: SnpRootKey;
  guestFieldSelect: number;
  /** The names of those fields, for people reading the header. */
  guestFields: string[];
  vmpl: number;
  guestSvn: number;
  /** TCB_VERSION's 8 bytes in report order, as hex (the report's `committedTcb.hex` when sealed). */
  tcbVersion: string;
  /** The measurement of the guest that sealed it (hex), to say plainly why another cannot open it. */
  measurement: string;
};

export class SealingError extends Error {}

/** Report data for the report read at start: it binds nothing, so it says what it is for. */
const STATE_REPORT_DATA = createHash("sha256").update("coco sealing: platform state").digest();

function tcbBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

function tcbU64(hex: string): bigint {
  const bytes = tcbBytes(hex);
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

function isSnpRecord(header: Record<string, unknown>): header is SnpSealRecord & Record<string, unknown> {
  return (
    header.source === "snp-derived-key" &&
    (header.rootKey === "vcek" || header.rootKey === "vmrk") &&
    Number.isInteger(header.guestFieldSelect) &&
    Number.isInteger(header.vmpl) &&
    Number.isInteger(header.guestSvn) &&
    typeof header.tcbVersion === "string" &&
    /^[0-9a-f]{16}$/.test(header.tcbVersion) &&
    typeof header.measurement === "string"
  );
}

/** The key request a record names. */
export function snpKeyRequestOf(record: SnpSealRecord): SnpKeyRequest {
  return {
    rootKey: record.rootKey,
    guestFieldSelect: record.guestFieldSelect,
    vmpl: record.vmpl,
    guestSvn: record.guestSvn,
    tcbVersion: tcbU64(record.tcbVersion),
  };
}

/**
 * Why this guest cannot ask for the key a record names, if it cannot: the firmware derives the
 * measurement (and policy, IDs) from the running guest, and refuses a TCB above the committed one
 * or a guest SVN above the launch one.
 */
export function snpRecordProblem(record: SnpSealRecord, report: SnpReport): string | undefined {
  if (
    (record.guestFieldSelect & SNP_GUEST_FIELDS.measurement) !== 0 &&
    record.measurement !== report.measurement
  ) {
    return `the secrets were sealed by a guest with measurement ${record.measurement}; this guest's is ${report.measurement}. A different image cannot open them: start this node afresh and join the service`;
  }
  const sealedAt = tcbBytes(record.tcbVersion);
  const committed = tcbBytes(report.committedTcb.hex);
  if (sealedAt.some((level, i) => level > (committed[i] ?? 0))) {
    return `the secrets were sealed at TCB ${record.tcbVersion}; this platform's committed TCB is ${report.committedTcb.hex}, older in at least one component (firmware rolled back, or another machine). The secure processor will not derive a key for a newer TCB`;
  }
  if (record.guestSvn > report.guestSvn) {
    return `the secrets were sealed at guest SVN ${record.guestSvn}; this guest was launched with SVN ${report.guestSvn}`;
  }
  return undefined;
}

/** A platform key for sealing, and the header that lets it be asked for again. */
export interface SealingKey {
  /** The AES-256-GCM key (HKDF of the platform key). Held in memory only. */
  key: Uint8Array;
  header: Record<string, unknown>;
}

/**
 * SEV-SNP sealing keys for this guest. `current` is the key new writes are sealed with (this
 * platform's committed TCB and launch guest SVN); `keyFor` asks again for the key a sealed file's
 * header names, or says clearly why it cannot.
 */
export interface SnpSealingKeys {
  readonly current: SealingKey & { header: SnpSealRecord };
  keyFor(header: Record<string, unknown>): Promise<Uint8Array>;
}

export async function snpSealingKeys(
  sealing: Extract<SealingSettings, { kind: "snp" }>,
  attestation: AttestationSettings,
  seams: ProviderSeams = {},
): Promise<SnpSealingKeys> {
  if (!attestation.snp)
    throw new SealingError("SNP sealing needs the SNP attestation settings (report source)");
  const source: SnpKeySource = seams.snpSealing?.deriveKey ?? snpKeyCommand(sealing.keyCommand);
  const ownReport = seams.snpSealing?.report;
  let report: SnpReport;
  try {
    report = ownReport
      ? parseSnpReport(await ownReport(STATE_REPORT_DATA))
      : (await acquireOwnSnpReport(attestation.snp, STATE_REPORT_DATA, seams)).report;
  } catch (e) {
    throw new SealingError(
      `cannot read this guest's SNP report, which sealing needs: ${(e as Error).message}`,
    );
  }
  const derive = async (record: SnpSealRecord): Promise<Uint8Array> => {
    const request = snpKeyRequestOf(record);
    encodeSnpKeyRequest(request);
    let platformKey: Uint8Array;
    try {
      platformKey = await source(request);
    } catch (e) {
      throw new SealingError(`the secure processor did not derive the sealing key: ${(e as Error).message}`);
    }
    if (!(platformKey instanceof Uint8Array) || platformKey.length !== 32) {
      throw new SealingError(`the derived key is ${platformKey?.length} bytes, not 32`);
    }
    try {
      return sealingKeyFrom(platformKey);
    } finally {
      platformKey.fill(0);
    }
  };
  const header: SnpSealRecord = {
    source: "snp-derived-key",
    rootKey: sealing.rootKey,
    guestFieldSelect: sealing.guestFieldSelect,
    guestFields: snpGuestFieldNames(sealing.guestFieldSelect),
    vmpl: sealing.vmpl ?? report.vmpl,
    guestSvn: report.guestSvn,
    tcbVersion: report.committedTcb.hex,
    measurement: report.measurement,
  };
  const current = { key: await derive(header), header };
  return {
    current,
    async keyFor(recorded) {
      if (!isSnpRecord(recorded)) {
        throw new SealingError(
          `the sealed file was not sealed with an SNP derived key (its header: ${JSON.stringify(recorded)})`,
        );
      }
      const problem = snpRecordProblem(recorded, report);
      if (problem) throw new SealingError(problem);
      if (JSON.stringify(recorded) === JSON.stringify(header)) return Uint8Array.from(current.key);
      return derive(recorded);
    },
  };
}
