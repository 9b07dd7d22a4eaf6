// Host side of `snp_attestation.verifySnpAttestation` (@microsoft/ccf-app's snp_attestation
// module): verifies an SEV-SNP report against its endorsement chain and AMD's bundled roots, and
// returns its fields in the shape the package declares.
import { type SnpTcb, verifySnpReport } from "../tee/index.ts";

function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be an ArrayBuffer`);
  return value;
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** CCF's TcbVersion object; Turin reports also carry `fmc`. */
function tcbVersion(tcb: SnpTcb): Record<string, number> {
  return {
    boot_loader: tcb.bootloader,
    tee: tcb.tee,
    snp: tcb.snp,
    microcode: tcb.microcode,
    ...(tcb.fmc === undefined ? {} : { fmc: tcb.fmc }),
  };
}

/**
 * Throws RangeError when the report does not verify (with every failed check named), TypeError
 * for arguments of the wrong type. Certificate dates are not checked, as in CCF: the call must
 * give the same answer on every node and at every time. `endorsed_tcb` is the reported TCB as 16
 * hex digits in report byte order; when given, it must equal the report's REPORTED_TCB.
 */
export function verifySnpAttestation(...args: unknown[]): unknown {
  if (args.length < 2 || args.length > 4) {
    throw new TypeError(`verifySnpAttestation takes 2 to 4 arguments, not ${args.length}`);
  }
  const evidence = bytes(args[0], "evidence");
  const endorsements = Buffer.from(bytes(args[1], "endorsements")).toString("utf8");
  if (args[2] !== undefined && args[2] !== null) {
    bytes(args[2], "uvm_endorsements");
    throw new RangeError(
      "uvm_endorsements (Azure UVM measurement endorsements, COSE with did:x509) are not supported by Coco",
    );
  }
  const endorsedTcb = args[3] ?? undefined;
  if (endorsedTcb !== undefined && typeof endorsedTcb !== "string") {
    throw new TypeError("endorsed_tcb must be a string");
  }
  let result: ReturnType<typeof verifySnpReport>;
  try {
    result = verifySnpReport(evidence, { chain: endorsements });
  } catch (e) {
    throw new RangeError(`SEV-SNP: ${(e as Error).message}`);
  }
  if (!result.ok) {
    const failed = result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    throw new RangeError(`SEV-SNP: the attestation does not verify: ${failed.join("; ")}`);
  }
  const r = result.report;
  if (r.policy.debugAllowed) throw new RangeError("SEV-SNP: the guest policy allows debugging");
  if (r.policy.migrateMaAllowed) throw new RangeError("SEV-SNP: the guest policy allows a migration agent");
  if (endorsedTcb !== undefined && endorsedTcb.toLowerCase() !== r.reportedTcb.hex) {
    throw new RangeError(
      `SEV-SNP: endorsed TCB ${endorsedTcb} does not match reported TCB ${r.reportedTcb.hex}`,
    );
  }
  return {
    attestation: {
      version: r.version,
      guest_svn: r.guestSvn,
      policy: {
        abi_minor: r.policy.abiMinor,
        abi_major: r.policy.abiMajor,
        smt: r.policy.smtAllowed ? 1 : 0,
        migrate_ma: r.policy.migrateMaAllowed ? 1 : 0,
        debug: r.policy.debugAllowed ? 1 : 0,
        single_socket: r.policy.singleSocketRequired ? 1 : 0,
      },
      family_id: fromHex(r.familyId),
      image_id: fromHex(r.imageId),
      vmpl: r.vmpl,
      signature_algo: r.signatureAlgo,
      platform_version: tcbVersion(r.currentTcb),
      platform_info: {
        smt_en: r.platformInfo.smtEnabled ? 1 : 0,
        tsme_en: r.platformInfo.tsmeEnabled ? 1 : 0,
      },
      flags: {
        author_key_en: r.authorKeyEn ? 1 : 0,
        mask_chip_key: r.maskChipKey ? 1 : 0,
        signing_key: r.signingKeyRaw,
      },
      report_data: fromHex(r.reportData),
      measurement: fromHex(r.measurement),
      host_data: fromHex(r.hostData),
      id_key_digest: fromHex(r.idKeyDigest),
      author_key_digest: fromHex(r.authorKeyDigest),
      report_id: fromHex(r.reportId),
      report_id_ma: fromHex(r.reportIdMa),
      reported_tcb: tcbVersion(r.reportedTcb),
      cpuid_fam_id: r.cpuid?.family ?? 0,
      cpuid_mod_id: r.cpuid?.model ?? 0,
      cpuid_step: r.cpuid?.stepping ?? 0,
      chip_id: fromHex(r.chipId),
      committed_tcb: tcbVersion(r.committedTcb),
      current_minor: r.currentVersion.minor,
      current_build: r.currentVersion.build,
      current_major: r.currentVersion.major,
      committed_build: r.committedVersion.build,
      committed_minor: r.committedVersion.minor,
      committed_major: r.committedVersion.major,
      launch_tcb: tcbVersion(r.launchTcb),
      // The report stores R and S little-endian in 72-byte fields; these are those raw fields.
      signature: {
        r: r.bytes.slice(0x2a0, 0x2a0 + 72),
        s: r.bytes.slice(0x2e8, 0x2e8 + 72),
      },
    },
  };
}
