import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { SERVICE_CURVES, type ServiceCurve } from "../crypto/index.ts";
import type { AttestationSettings, SealingSettings } from "../tee/index.ts";
import { ConfigError, certListAt, fail, intAt, memberListAt, objectAt, stringAt } from "./config-fields.ts";
import {
  attestationAt,
  pathListAt,
  type SawtoothSettings,
  sawtoothAt,
  sealingAt,
  trustJoinersWhileOpeningAt,
} from "./config-sections.ts";

/** A node's start configuration, after validation, with every path absolute. */
export interface NodeConfig {
  /** Holds the ledger, snapshots and the node's sealed secrets. */
  dir: string;
  rpc: {
    host: string;
    port: number;
    maxBodyBytes: number;
    /** What a backup does with a write: forward it to the primary, or redirect the client (307). */
    forwarding: "forward" | "redirect";
    forwardTimeoutMs: number;
    /**
     * Client connections one address may hold open (an IPv6 address counts by its /64); more are
     * closed on accept. Default 512: twice the most a known legitimate single host opens (the
     * load benchmark and test clients use up to 256 from 127.0.0.1), and a proxy or NAT that
     * funnels many clients through one address needs headroom; yet one address cannot take
     * more than a small share of the node's sockets and file descriptors.
     */
    maxConnectionsPerAddress: number;
    /**
     * A client connection with no request under way and no traffic for this long is closed;
     * also the keep-alive time announced to clients (so they stop reusing a connection before
     * the node closes it). Default 30 s.
     */
    idleTimeoutMs: number;
  };
  /** Where other nodes of the service reach this one (mutual TLS, node certificates). */
  nodeAddress: { host: string; port: number };
  /**
   * Disaster recovery: start a new service from the ledger already in `dir/ledger` (a copy of a
   * surviving node's), whose signatures must be the previous service's.
   */
  recover: { previousServiceCertFile: string } | null;
  /** Join an existing service instead of starting a new one. */
  join: { target: string; serviceCertFile: string; timeoutMs: number } | null;
  /**
   * 0 (the default): the service opens when members vote `transition_service_to_open`. A positive
   * number opens a new service by itself once that many nodes are trusted (tests and benchmarks).
   */
  openAtNodes: number;
  /** Constitution module files, joined in order (CCF's layout: actions, validate, resolve, apply). */
  constitution: string[];
  /** Where the service certificate is written for clients to pin. */
  serviceCertFile: string;
  /**
   * The curve of the service and node keys of a new service (or of the new identity a recovery
   * creates): secp384r1 (P-384, the default, as CCF) or secp256r1 (P-256: signatures about ten
   * times cheaper; BENCHMARKS.md). A joining node takes the curve of the service it joins.
   */
  curve: ServiceCurve;
  /** Initial members; one with an RSA encryption key is a recovery member (gets a recovery share). */
  members: Array<{ cert: string; encryptionPublicKey?: string }>;
  users: Array<{ cert: string }>;
  /** `receiptWindow`: receipts of the transactions this far before commit are served from memory. */
  ledger: { chunkSize: number; receiptWindow: number };
  /** `maxInFlight` unset: the service curve's default (signing.ts, `defaultMaxInFlight`). */
  signatures: { maxTransactions: number; maxIntervalMs: number; maxInFlight?: number };
  snapshots: { txInterval: number };
  /** Consensus timing: ticks of `tickMs`; elections after a random timeout in [min, max) ticks. */
  consensus: { tickMs: number; electionTicksMin: number; electionTicksMax: number };
  /** Name of a built-in app (`logging`) or none. */
  app: string | null;
  /** Serve Ethereum JSON-RPC at `POST /app/eth` (the EVM executor, docs/ethereum.md). */
  evm: boolean;
  /**
   * JS apps installed by governance (`set_js_app`): served unless `enabled` is false. A JS
   * endpoint of the same path as a native one replaces it only with `replaceNative`.
   */
  jsApps: { enabled: boolean; replaceNative: boolean };
  log: { level: "trace" | "debug" | "info" | "warn" | "error"; format: "json" | "pretty" };
  commitWaitTimeoutMs: number;
  /** How this node attests itself: `virtual` (development, insecure) or `snp` (AMD SEV-SNP). */
  attestation: AttestationSettings;
  /** How its secrets are sealed: an SNP derived key, or (virtual only) a key file outside `dir`. */
  sealing: SealingSettings;
  /**
   * Serve Sawtooth (docs/sawtooth.md): transaction processors connect over ZeroMQ to
   * `processorAddress`; null (the default) leaves Sawtooth off.
   */
  sawtooth: SawtoothSettings | null;
  /**
   * `attestation.virtual.trustJoinersWhileOpening`: development only, virtual platform only,
   * false by default. While the service is Opening, a joiner with a valid virtual attestation is
   * trusted at once instead of waiting for the members' `transition_node_to_trusted` vote.
   * Virtual attestations can be forged by anyone, so this hands the service's secrets to whoever
   * joins first; a node that has it set warns at start.
   */
  trustJoinersWhileOpening: boolean;
}

export { ConfigError } from "./config-fields.ts";

function parseAddress(text: string, path = "rpc.address"): { host: string; port: number } {
  const match = /^([0-9.]+|localhost|\[[0-9a-fA-F:]+\]):([0-9]{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) fail(path, `must be host:port, got ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port };
}

/** Validates a parsed configuration; relative paths are taken from `baseDir`. */
export function parseConfig(raw: unknown, baseDir: string): NodeConfig {
  const top = objectAt(raw, "(top level)", [
    "dir",
    "rpc",
    "serviceCertFile",
    "curve",
    "members",
    "users",
    "ledger",
    "signatures",
    "snapshots",
    "consensus",
    "nodeAddress",
    "join",
    "openAtNodes",
    "recover",
    "constitution",
    "app",
    "evm",
    "jsApps",
    "log",
    "commitWaitTimeoutMs",
    "attestation",
    "sealing",
    "sawtooth",
  ]);
  const rpc = objectAt(top.rpc ?? {}, "rpc", [
    "address",
    "maxBodyBytes",
    "forwarding",
    "forwardTimeoutMs",
    "maxConnectionsPerAddress",
    "idleTimeoutMs",
  ]);
  const forwarding = stringAt(rpc, "forwarding", "rpc", "forward");
  if (forwarding !== "forward" && forwarding !== "redirect")
    fail("rpc.forwarding", "must be forward or redirect");
  const ledger = objectAt(top.ledger ?? {}, "ledger", ["chunkSize", "receiptWindow"]);
  const signatures = objectAt(top.signatures ?? {}, "signatures", [
    "maxTransactions",
    "maxIntervalMs",
    "maxInFlight",
  ]);
  const snapshots = objectAt(top.snapshots ?? {}, "snapshots", ["txInterval"]);
  const log = objectAt(top.log ?? {}, "log", ["level", "format"]);
  const consensus = objectAt(top.consensus ?? {}, "consensus", [
    "tickMs",
    "electionTicksMin",
    "electionTicksMax",
  ]);
  const electionTicksMin = intAt(consensus, "electionTicksMin", "consensus", 10, 2, 10_000);
  const electionTicksMax = intAt(consensus, "electionTicksMax", "consensus", 50, 3, 10_000);
  if (electionTicksMax <= electionTicksMin)
    fail("consensus.electionTicksMax", "must be above electionTicksMin");
  const level = stringAt(log, "level", "log", "info");
  if (!["trace", "debug", "info", "warn", "error"].includes(level))
    fail("log.level", "must be trace|debug|info|warn|error");
  const format = stringAt(log, "format", "log", "json");
  if (format !== "json" && format !== "pretty") fail("log.format", "must be json or pretty");
  const jsApps = objectAt(top.jsApps ?? {}, "jsApps", ["enabled", "replaceNative"]);
  for (const field of ["enabled", "replaceNative"]) {
    if (jsApps[field] !== undefined && typeof jsApps[field] !== "boolean")
      fail(`jsApps.${field}`, "must be a boolean");
  }
  const app = top.app ?? null;
  if (app !== null && app !== "logging") fail("app", 'must be "logging" or null');
  if (top.evm !== undefined && typeof top.evm !== "boolean") fail("evm", "must be true or false");
  const join =
    top.join === undefined || top.join === null
      ? null
      : objectAt(top.join, "join", ["target", "serviceCertFile", "timeoutMs"]);
  const members = memberListAt(top, baseDir);
  const recover =
    top.recover === undefined || top.recover === null
      ? null
      : objectAt(top.recover, "recover", ["previousServiceCertFile"]);
  if (recover && join) fail("recover", "a node either recovers a service or joins one, not both");
  if (recover && members.length > 0)
    fail("members", "a recovering node takes its members from the ledger it recovers");
  if (members.length === 0 && !join && !recover)
    fail("members", "at least one member is required to govern the service");
  if (members.length > 0 && join)
    fail("members", "a joining node takes its members from the service it joins");
  if (join && parseAddress(stringAt(top, "nodeAddress", "", "127.0.0.1:0"), "nodeAddress").port === 0) {
    fail("nodeAddress", "a joining node needs a fixed port: the service records where to reach it");
  }
  const dir = resolve(baseDir, stringAt(top, "dir", ""));
  const attestation = attestationAt(top.attestation, baseDir);
  return {
    dir,
    rpc: {
      ...parseAddress(stringAt(rpc, "address", "rpc", "127.0.0.1:8000")),
      maxBodyBytes: intAt(rpc, "maxBodyBytes", "rpc", 1024 * 1024, 1024, 64 * 1024 * 1024),
      forwarding,
      forwardTimeoutMs: intAt(rpc, "forwardTimeoutMs", "rpc", 10_000, 100, 600_000),
      maxConnectionsPerAddress: intAt(rpc, "maxConnectionsPerAddress", "rpc", 512, 1, 1_000_000),
      idleTimeoutMs: intAt(rpc, "idleTimeoutMs", "rpc", 30_000, 100, 3_600_000),
    },
    serviceCertFile: resolve(baseDir, stringAt(top, "serviceCertFile", "", "service_cert.pem")),
    nodeAddress: parseAddress(stringAt(top, "nodeAddress", "", "127.0.0.1:0"), "nodeAddress"),
    join: join && {
      target: `${parseAddress(stringAt(join, "target", "join"), "join.target").host}:${parseAddress(stringAt(join, "target", "join"), "join.target").port}`,
      serviceCertFile: resolve(baseDir, stringAt(join, "serviceCertFile", "join")),
      timeoutMs: intAt(join, "timeoutMs", "join", 60_000, 1000, 3_600_000),
    },
    openAtNodes: intAt(top, "openAtNodes", "", 0, 0, 1000),
    curve: curveAt(top.curve),
    recover: recover && {
      previousServiceCertFile: resolve(baseDir, stringAt(recover, "previousServiceCertFile", "recover")),
    },
    constitution: pathListAt(top, "constitution", baseDir),
    members,
    users: certListAt(top, "users", baseDir),
    ledger: {
      chunkSize: intAt(ledger, "chunkSize", "ledger", 4 * 1024 * 1024, 4096, 1024 * 1024 * 1024),
      receiptWindow: intAt(ledger, "receiptWindow", "ledger", 10_000, 1, 1_000_000_000),
    },
    signatures: {
      maxTransactions: intAt(signatures, "maxTransactions", "signatures", 1000, 1, 1_000_000),
      maxIntervalMs: intAt(signatures, "maxIntervalMs", "signatures", 20, 1, 60_000),
      ...(signatures.maxInFlight === undefined
        ? {}
        : { maxInFlight: intAt(signatures, "maxInFlight", "signatures", 1, 1, 16) }),
    },
    snapshots: { txInterval: intAt(snapshots, "txInterval", "snapshots", 10_000, 2, 100_000_000) },
    consensus: {
      tickMs: intAt(consensus, "tickMs", "consensus", 100, 1, 10_000),
      electionTicksMin,
      electionTicksMax,
    },
    app: app as string | null,
    evm: top.evm === true,
    jsApps: { enabled: jsApps.enabled !== false, replaceNative: jsApps.replaceNative === true },
    log: { level: level as NodeConfig["log"]["level"], format },
    commitWaitTimeoutMs: intAt(top, "commitWaitTimeoutMs", "", 10_000, 1, 600_000),
    attestation,
    sealing: sealingAt(top.sealing, attestation, dir, baseDir),
    trustJoinersWhileOpening: trustJoinersWhileOpeningAt(top.attestation),
    sawtooth: sawtoothAt(top.sawtooth),
  };
}

/** `curve`: one of the service curves, P-384 unless set. */
function curveAt(value: unknown): ServiceCurve {
  if (value === undefined) return "secp384r1";
  if (typeof value !== "string" || !(SERVICE_CURVES as readonly string[]).includes(value)) {
    fail("curve", `must be one of ${SERVICE_CURVES.join(", ")}`);
  }
  return value as ServiceCurve;
}

export function loadConfig(file: string): NodeConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(raw, dirname(resolve(file)));
}
