import { randomBytes } from "node:crypto";
import { type Logger, pino } from "pino";
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
} from "../../src/crypto/index.ts";
import { type ChannelsOptions, NodeChannels } from "../../src/net/index.ts";

import { budget } from "../e2e/waits.ts";

export { budget } from "../e2e/waits.ts";
export { freePort } from "../helpers/ports.ts";

/**
 * The deadline of a request that is expected to be answered: only a hang reaches it, so it is
 * far above what a loaded two-core machine needs (a tight one turned slowness into failures).
 */
export const ANSWER_MS = 30_000;

export interface Service {
  certPem: string;
  privateKeyPem: string;
}

export interface NodeIdentity {
  nodeId: string;
  certPem: string;
  privateKeyPem: string;
  serviceCertPem: string;
}

export async function makeService(name = "Coco Test Service"): Promise<Service> {
  return createServiceIdentity({ subjectName: name, now: new Date(), serial: randomBytes(8) });
}

export async function makeNode(service: Service): Promise<NodeIdentity> {
  const keys = generateP384KeyPair();
  const certPem = await issueNodeCertificate({
    service,
    nodePublicKeyPem: keys.publicKeyPem,
    now: new Date(),
    serial: randomBytes(8),
  });
  return {
    nodeId: nodeIdOf(certPem),
    certPem,
    privateKeyPem: keys.privateKeyPem,
    serviceCertPem: service.certPem,
  };
}

/** Fast reconnects so tests do not wait on production backoff. */
export const FAST_BACKOFF = { initialMs: 20, maxMs: 200 };

export function start(
  id: NodeIdentity,
  extra: Partial<ChannelsOptions> = {},
  port = 0,
): Promise<NodeChannels> {
  return NodeChannels.listen({
    ...id,
    listen: { host: "127.0.0.1", port },
    backoff: FAST_BACKOFF,
    ...extra,
  });
}

export function addr(channels: NodeChannels | number): string {
  return `127.0.0.1:${typeof channels === "number" ? channels : channels.port}`;
}

/** Polls `cond` until it holds; fails after `timeoutMs` (an idle machine's figure) stretched by the load. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const limit = budget(timeoutMs);
  const deadline = Date.now() + limit;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Records every message a node receives, per sender. */
export function inbox(channels: NodeChannels): Map<string, unknown[]> {
  const got = new Map<string, unknown[]>();
  channels.onMessage((from, message) => {
    let list = got.get(from);
    if (!list) {
      list = [];
      got.set(from, list);
    }
    list.push(message);
  });
  return got;
}

/** Makes every pair of nodes peers of each other. */
export function mesh(nodes: NodeChannels[]): void {
  for (const a of nodes) {
    for (const b of nodes) if (a !== b) a.setPeer(b.nodeId, addr(b), b.certPem);
  }
}

/** A pino logger that keeps every record, to check what a node said and why. */
export function captureLog(): {
  log: Logger;
  records: { level: number; msg: string; [k: string]: unknown }[];
} {
  const records: { level: number; msg: string }[] = [];
  const log = pino(
    { level: "debug" },
    {
      write(line: string) {
        records.push(JSON.parse(line));
      },
    },
  );
  return { log, records };
}
