import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { nodeIdOf } from "../crypto/index.ts";
import { type AttestationProvider, attestationProvider, type ProviderSeams, SnpError } from "../tee/index.ts";
import type { NodeConfig } from "./config.ts";
import { type NodeIdentity, newNodeKey, serviceCurveOf } from "./identity.ts";
import { type JoinPeer, type JoinResponse, signJoinProof, takeEncryptionKey, unwrapSecrets } from "./join.ts";
import { NodeError } from "./node-error.ts";

/** A Pending joiner asks again this often: how soon it learns of the vote that trusts it. */
const RETRY_MS = 200;
/** How often a joiner waiting for the members' vote says so in its log. */
const PROGRESS_LOG_MS = 10_000;

/**
 * Joins an existing service: sends this node's public key, its certificate signing request, its
 * encryption key and its attestation to any node (following the answer to the primary), then
 * asks again every 200 ms until the members have trusted it (`transition_node_to_trusted`)
 * or `join.timeoutMs` runs out. Until then the service answers Pending and hands out nothing.
 * Once trusted, the answer carries the certificate governance endorsed, the trusted nodes to
 * connect to, and the service's secrets, unwrapped here with the encryption key that never
 * leaves this node. `attestationSeams` is in-process only (tests: a fake configfs-tsm).
 */
export async function joinService(
  config: NodeConfig,
  log: Logger,
  attestationSeams: ProviderSeams = {},
): Promise<{ identity: NodeIdentity; peers: JoinPeer[] }> {
  const join = config.join!;
  // Generated on a worker thread while this thread makes the node key and its request.
  const encryptionKeyReady = takeEncryptionKey();
  const serviceCertPem = readFileSync(join.serviceCertFile, "utf8");
  // The node key is on the service's curve (P-384, or P-256 if the service chose it).
  const nodeKey = await newNodeKey(config.rpc.host, serviceCurveOf(serviceCertPem));
  const nodeId = nodeIdOf(nodeKey.publicKeyPem);
  const encryptionKey = await encryptionKeyReady;
  const attestation = await attest(
    attestationProvider(config.attestation, attestationSeams),
    nodeKey.publicKeyPem,
    log,
  );
  const body = JSON.stringify({
    node_public_key: nodeKey.publicKeyPem,
    certificate_signing_request: nodeKey.csrPem,
    encryption_public_key: encryptionKey.publicKeyPem,
    encryption_key_signature: signJoinProof(nodeKey.privateKeyPem, encryptionKey.publicKeyPem),
    rpc_address: `${config.rpc.host}:${config.rpc.port}`,
    node_address: `${config.nodeAddress.host}:${config.nodeAddress.port}`,
    attestation,
  });
  // Loaded here, not at start-up: only a joining node needs undici (~0.2 s of CPU to load).
  const { Agent, request } = await import("undici");
  const dispatcher = new Agent({ connect: { ca: serviceCertPem } });
  const started = Date.now();
  const deadline = started + join.timeoutMs;
  let target = join.target;
  let lastProblem = "no answer yet";
  let lastStatus: string | undefined;
  let lastProgressLog = 0;
  log.info({ nodeId, target }, "asking to join the service");
  try {
    while (Date.now() < deadline) {
      try {
        const res = await request(`https://${target}/node/join`, {
          method: "POST",
          dispatcher,
          headers: { "content-type": "application/json" },
          body,
        });
        const answer = (await res.body.json()) as Partial<JoinResponse> & {
          error?: { code: string; message: string };
          primary_rpc_address?: string;
        };
        if (res.statusCode === 200 && answer.node_id !== nodeId) {
          throw new NodeError(`${target} answered the join for another node (${String(answer.node_id)})`);
        }
        if (res.statusCode === 200 && answer.status === "Retired") {
          throw new NodeError(`the service has retired node ${nodeId}; it cannot join again with this key`);
        }
        if (
          res.statusCode === 200 &&
          answer.status === "Trusted" &&
          answer.wrapped_secrets &&
          typeof answer.node_certificate === "string" &&
          typeof answer.service_certificate === "string"
        ) {
          const secrets = unwrapSecrets(answer.wrapped_secrets, encryptionKey.privateKeyPem);
          log.info(
            { nodeId, via: target, waitedMs: Date.now() - started },
            "the members trusted this node: joined the service",
          );
          const identity: NodeIdentity = {
            nodeId,
            nodePrivateKeyPem: nodeKey.privateKeyPem,
            nodeCertPem: answer.node_certificate,
            nodeCsrPem: nodeKey.csrPem,
            servicePrivateKeyPem: secrets.service_private_key,
            serviceCertPem: answer.service_certificate,
            ledgerSecrets: secrets.ledger_secrets,
          };
          return { identity, peers: Array.isArray(answer.peers) ? answer.peers : [] };
        }
        if (res.statusCode === 200) {
          lastProblem =
            answer.status === "Trusted"
              ? "trusted, but no certificate has been endorsed for this node yet"
              : "the members have not voted to trust this node yet (Pending)";
          const now = Date.now();
          if (answer.status !== lastStatus || now - lastProgressLog >= PROGRESS_LOG_MS) {
            lastStatus = answer.status;
            lastProgressLog = now;
            log.info(
              { nodeId, status: answer.status, waitedMs: now - started, leftMs: deadline - now },
              `waiting to be trusted: ${lastProblem}; members trust it with transition_node_to_trusted {"node_id": "${nodeId}"}`,
            );
          }
        } else if (res.statusCode === 429) {
          // Rate limited: wait as asked (within the join's own deadline), then try again.
          lastProblem = answer.error?.message ?? "rate limited";
          const seconds = Number(res.headers["retry-after"]);
          const waitMs = Number.isFinite(seconds) ? Math.min(seconds * 1000, deadline - Date.now()) : 0;
          if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
        } else if (answer.error?.code === "NotPrimary" && answer.primary_rpc_address) {
          target = answer.primary_rpc_address;
          continue;
        } else if (res.statusCode >= 400 && res.statusCode < 500) {
          throw new NodeError(`join refused by ${target}: ${answer.error?.message ?? res.statusCode}`);
        } else {
          lastProblem = answer.error?.message ?? `HTTP ${res.statusCode}`;
        }
      } catch (e) {
        if (e instanceof NodeError) throw e;
        lastProblem = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  } finally {
    await dispatcher.close();
  }
  throw new NodeError(
    `could not join the service at ${join.target} within ${join.timeoutMs} ms: ${lastProblem}`,
  );
}

/**
 * This joiner's attestation, binding its new key: on SNP, a report whose REPORT_DATA is the
 * SHA-256 of the key (then 32 zero bytes) and the VCEK chain that endorses it.
 */
async function attest(provider: AttestationProvider, publicKeyPem: string, log: Logger) {
  if (provider.platform === "virtual") {
    log.warn(
      "INSECURE: joining with a virtual attestation; it proves nothing about this node's code or hardware",
    );
  }
  try {
    const attestation = await provider.attest(publicKeyPem);
    if (attestation.format === "snp") log.info("acquired an SEV-SNP report binding this node's key");
    return attestation;
  } catch (e) {
    if (e instanceof SnpError) throw new NodeError(`cannot attest this node for joining: ${e.message}`);
    throw e;
  }
}
