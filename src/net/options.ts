import { type Logger, pino } from "pino";
import { nodeIdOf, verifyIssuedBy } from "../crypto/index.ts";
import { type Backoff, DEFAULT_BACKOFF, validateBackoff } from "./backoff.ts";
import { NetError } from "./errors.ts";
import { MAX_FRAME_LIMIT } from "./frame.ts";

export interface ChannelsOptions {
  /** This node's id; must be nodeIdOf(certPem). */
  nodeId: string;
  /** This node's certificate, issued by the service certificate; used as TLS server and client. */
  certPem: string;
  privateKeyPem: string;
  /** The service identity certificate: the only trust anchor for peers. */
  serviceCertPem: string;
  /** Where to accept peers' connections; port 0 picks a free port (see NodeChannels.port). */
  listen: { host: string; port: number };
  log?: Logger;
  /** Bound on frames waiting for one peer (each direction); beyond it sends are dropped. Default 64 MiB. */
  maxQueuedBytesPerPeer?: number;
  /** Reconnect backoff. Default { initialMs: 100, maxMs: 5000 }. */
  backoff?: Backoff;
  /** Largest frame accepted or sent. Default 256 MiB. */
  maxFrameBytes?: number;
  /** Time allowed for TCP connect plus TLS handshake, either side. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /**
   * A connection that carries frames, with nothing heard from the peer for this long, is dropped
   * and redialled (a partition drops packets without a reset). Heard: any bytes from the peer on
   * either connection, or the peer's TCP taking bytes off a full send buffer of ours. Default
   * 6000 ms; tests shorten it.
   */
  stallMs?: number;
}

export interface ResolvedOptions {
  nodeId: string;
  certPem: string;
  privateKeyPem: string;
  serviceCertPem: string;
  listen: { host: string; port: number };
  log: Logger;
  maxQueuedBytesPerPeer: number;
  backoff: Backoff;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  stallMs: number;
}

export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * Not shorter: a peer starved of CPU (catching up under load) can be silent for seconds, and
 * redialling it then only loses the frames in flight and costs a handshake it is too busy to do.
 */
export const DEFAULT_STALL_MS = 6_000;

function positiveInt(value: number | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new NetError("config", `${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return value;
}

/** The node certificate is for `nodeId`'s key and issued by the service certificate. */
export function checkCredentials(nodeId: string, certPem: string, serviceCertPem: string): void {
  let certId: string;
  try {
    certId = nodeIdOf(certPem);
  } catch (err) {
    throw new NetError("config", `certPem is not a readable certificate: ${(err as Error).message}`);
  }
  if (certId !== nodeId) {
    throw new NetError("config", `nodeId ${nodeId} does not match certPem, whose key gives ${certId}`);
  }
  const issued = verifyIssuedBy(certPem, serviceCertPem);
  if (!issued.ok) {
    throw new NetError(
      "config",
      `node certificate is not issued by the service certificate: ${issued.reason}`,
    );
  }
}

/** Checks options up front so a misconfigured node fails at start with a clear reason. */
export function resolveOptions(opts: ChannelsOptions): ResolvedOptions {
  for (const key of ["nodeId", "certPem", "privateKeyPem", "serviceCertPem"] as const) {
    if (typeof opts[key] !== "string" || opts[key].length === 0) {
      throw new NetError("config", `${key} must be a non-empty string`);
    }
  }
  checkCredentials(opts.nodeId, opts.certPem, opts.serviceCertPem);
  const { host, port } = opts.listen ?? {};
  if (typeof host !== "string" || host.length === 0) {
    throw new NetError("config", "listen.host must be a non-empty string");
  }
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new NetError("config", `listen.port must be an integer from 0 to 65535, got ${port}`);
  }
  return {
    nodeId: opts.nodeId,
    certPem: opts.certPem,
    privateKeyPem: opts.privateKeyPem,
    serviceCertPem: opts.serviceCertPem,
    listen: { host, port },
    log: opts.log ?? pino({ level: "silent" }),
    maxQueuedBytesPerPeer: positiveInt(
      opts.maxQueuedBytesPerPeer,
      DEFAULT_MAX_QUEUED_BYTES,
      "maxQueuedBytesPerPeer",
      Number.MAX_SAFE_INTEGER,
    ),
    backoff: validateBackoff(opts.backoff ?? DEFAULT_BACKOFF),
    maxFrameBytes: positiveInt(opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, "maxFrameBytes", MAX_FRAME_LIMIT),
    handshakeTimeoutMs: positiveInt(
      opts.handshakeTimeoutMs,
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
      "handshakeTimeoutMs",
      2 ** 31 - 1,
    ),
    stallMs: positiveInt(opts.stallMs, DEFAULT_STALL_MS, "stallMs", 2 ** 31 - 1),
  };
}
