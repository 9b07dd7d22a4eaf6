import { resolve } from "node:path";
import {
  type AttestationSettings,
  DEFAULT_SNP_SEALING_FIELDS,
  type SealingSettings,
  SNP_GUEST_FIELDS,
  type SnpGuestField,
  type SnpSettings,
  snpKeyCommandProblem,
} from "../tee/index.ts";
import { fail, intAt, type Json, objectAt, stringAt } from "./config-fields.ts";
import { defaultVirtualKeyFile, isInsideDir } from "./sealed-identity.ts";

/** The config's platform sections: attestation, sealing, and the Sawtooth processor address. */
/** `attestation.virtual`: the virtual platform's development options (see NodeConfig). */
export function trustJoinersWhileOpeningAt(value: unknown): boolean {
  const section = (value ?? {}) as Json;
  if (section.virtual === undefined) return false;
  const virtual = objectAt(section.virtual, "attestation.virtual", ["trustJoinersWhileOpening"]);
  const flag = virtual.trustJoinersWhileOpening ?? false;
  if (typeof flag !== "boolean")
    fail("attestation.virtual.trustJoinersWhileOpening", "must be true or false");
  return flag;
}

export function pathListAt(top: Json, key: string, baseDir: string): string[] {
  const value = top[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.length > 0)) {
    fail(key, "must be a list of file paths");
  }
  return (value as string[]).map((v) => resolve(baseDir, v));
}

/**
 * The `attestation` section: `{platform: "virtual"}` (the default) or `{platform: "snp", snp:
 * {reportSource, endorsements}}`. The report source is configfs-tsm (default
 * /sys/kernel/config/tsm/report) or a command whose argv holds `{report}` and `{report-data}`.
 */
export function attestationAt(value: unknown, baseDir: string): AttestationSettings {
  if (value === undefined || value === null) return { platform: "virtual" };
  const section = objectAt(value, "attestation", ["platform", "snp", "virtual"]);
  const platform = stringAt(section, "platform", "attestation", "virtual");
  if (platform !== "virtual" && platform !== "snp")
    fail("attestation.platform", 'must be "virtual" or "snp"');
  if (platform === "snp" && section.virtual !== undefined) {
    fail(
      "attestation.virtual",
      'is only used with platform "virtual": on SEV-SNP, joiners are trusted only by the members\' vote',
    );
  }
  if (platform === "virtual") {
    if (section.snp !== undefined) fail("attestation.snp", 'is only used with platform "snp"');
    return { platform };
  }
  if (section.snp === undefined) {
    fail("attestation.snp", "is required with platform snp: {reportSource, endorsements}");
  }
  const snp = objectAt(section.snp, "attestation.snp", ["reportSource", "endorsements"]);
  return {
    platform,
    snp: {
      reportSource: reportSourceAt(snp.reportSource),
      endorsements: endorsementsAt(snp.endorsements, baseDir),
    },
  };
}

export function reportSourceAt(value: unknown): SnpSettings["reportSource"] {
  const path = "attestation.snp.reportSource";
  if (value === undefined) return { configfsTsm: "/sys/kernel/config/tsm/report" };
  const source = objectAt(value, path, ["configfsTsm", "command"]);
  if ((source.configfsTsm === undefined) === (source.command === undefined)) {
    fail(path, "must name exactly one of configfsTsm (a directory) or command (an argv array)");
  }
  if (source.configfsTsm !== undefined) {
    const dir = stringAt(source, "configfsTsm", path);
    if (!dir.startsWith("/")) fail(`${path}.configfsTsm`, "must be an absolute path");
    return { configfsTsm: dir };
  }
  const argv = source.command;
  if (
    !Array.isArray(argv) ||
    argv.length === 0 ||
    !argv.every((a) => typeof a === "string" && a.length > 0)
  ) {
    fail(`${path}.command`, "must be a non-empty array of non-empty strings (program, then arguments)");
  }
  const args = (argv as string[]).slice(1).join(" ");
  if (!args.includes("{report}") || !args.includes("{report-data}")) {
    fail(
      `${path}.command`,
      "its arguments must contain {report} (where the tool writes the report) and {report-data}",
    );
  }
  return { command: argv as string[] };
}

export function endorsementsAt(value: unknown, baseDir: string): SnpSettings["endorsements"] {
  const path = "attestation.snp.endorsements";
  if (value === undefined) fail(path, "is required: give file, dir or kdsUrl");
  const e = objectAt(value, path, ["file", "dir", "kdsUrl", "cacheDir"]);
  const out: SnpSettings["endorsements"] = {};
  if (e.file !== undefined) out.file = resolve(baseDir, stringAt(e, "file", path));
  if (e.dir !== undefined) out.dir = resolve(baseDir, stringAt(e, "dir", path));
  if (e.kdsUrl !== undefined) {
    const url = stringAt(e, "kdsUrl", path);
    if (!/^https?:\/\/[^\s/]+/.test(url))
      fail(`${path}.kdsUrl`, `must be an http(s) URL, got ${JSON.stringify(url)}`);
    out.kdsUrl = url;
  }
  if (e.cacheDir !== undefined) {
    if (out.kdsUrl === undefined) fail(`${path}.cacheDir`, "only caches what kdsUrl fetches: set kdsUrl too");
    out.cacheDir = resolve(baseDir, stringAt(e, "cacheDir", path));
  }
  if (!out.file && !out.dir && !out.kdsUrl) fail(path, "must give at least one of file, dir or kdsUrl");
  return out;
}

/**
 * The `sealing` section. On SEV-SNP: `{snp: {keyCommand, rootKey?, guestFields?, vmpl?}}`, and a
 * key file is refused. On the virtual platform: `{keyFile?}`, by default `<dir>.sealing.key`
 * beside the node's directory, and never inside it.
 */
export function sealingAt(
  value: unknown,
  attestation: AttestationSettings,
  dir: string,
  baseDir: string,
): SealingSettings {
  const section = objectAt(value ?? {}, "sealing", ["keyFile", "snp"]);
  if (attestation.platform === "snp") {
    if (section.keyFile !== undefined) {
      fail(
        "sealing.keyFile",
        "a node on SEV-SNP refuses to start with a file key: its secrets are sealed with a key the AMD secure processor derives (set sealing.snp instead)",
      );
    }
    if (section.snp === undefined) {
      fail("sealing.snp", "is required with platform snp: {keyCommand, rootKey?, guestFields?, vmpl?}");
    }
    const snp = objectAt(section.snp, "sealing.snp", ["keyCommand", "rootKey", "guestFields", "vmpl"]);
    const argv = snp.keyCommand;
    if (
      !Array.isArray(argv) ||
      argv.length === 0 ||
      !argv.every((a) => typeof a === "string" && a.length > 0)
    ) {
      fail(
        "sealing.snp.keyCommand",
        "must be a non-empty array of non-empty strings (program, then arguments)",
      );
    }
    const problem = snpKeyCommandProblem(argv as string[]);
    if (problem) fail("sealing.snp.keyCommand", problem);
    const rootKey = stringAt(snp, "rootKey", "sealing.snp", "vcek");
    if (rootKey !== "vcek" && rootKey !== "vmrk") fail("sealing.snp.rootKey", 'must be "vcek" or "vmrk"');
    const fields = snp.guestFields ?? DEFAULT_SNP_SEALING_FIELDS;
    const names = Object.keys(SNP_GUEST_FIELDS);
    if (!Array.isArray(fields) || !fields.every((f) => typeof f === "string" && names.includes(f))) {
      fail("sealing.snp.guestFields", `must be a list of: ${names.join(", ")}`);
    }
    if (!fields.includes("measurement")) {
      fail(
        "sealing.snp.guestFields",
        "must include measurement: sealed secrets are bound to the code that sealed them",
      );
    }
    const guestFieldSelect = (fields as SnpGuestField[]).reduce((bits, f) => bits | SNP_GUEST_FIELDS[f], 0);
    return {
      kind: "snp",
      keyCommand: argv as string[],
      rootKey,
      guestFieldSelect,
      ...(snp.vmpl === undefined ? {} : { vmpl: intAt(snp, "vmpl", "sealing.snp", 0, 0, 3) }),
    };
  }
  if (section.snp !== undefined) fail("sealing.snp", 'is only used with attestation platform "snp"');
  const keyFile =
    section.keyFile === undefined
      ? defaultVirtualKeyFile(dir)
      : resolve(baseDir, stringAt(section, "keyFile", "sealing"));
  if (isInsideDir(dir, keyFile)) {
    fail(
      section.keyFile === undefined ? "dir" : "sealing.keyFile",
      `the sealing key file ${keyFile} would be inside the node's directory ${dir}: set sealing.keyFile to a path outside it`,
    );
  }
  return { kind: "file", keyFile };
}

/** Where Sawtooth transaction processors connect (docs/sawtooth.md). */
export interface SawtoothSettings {
  processorAddress: string;
  processorTimeoutMs: number;
}

export function sawtoothAt(value: unknown): SawtoothSettings | null {
  if (value === undefined || value === null) return null;
  const s = objectAt(value, "sawtooth", ["processorAddress", "processorTimeoutMs"]);
  const processorAddress = stringAt(s, "processorAddress", "sawtooth");
  if (!/^tcp:\/\/[^\s]+:(\d+|\*)$/.test(processorAddress))
    fail("sawtooth.processorAddress", "must be a ZeroMQ tcp address, e.g. tcp://127.0.0.1:4004");
  return {
    processorAddress,
    processorTimeoutMs: intAt(s, "processorTimeoutMs", "sawtooth", 10_000, 100, 600_000),
  };
}
