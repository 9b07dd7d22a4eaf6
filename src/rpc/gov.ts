import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  ackStateDigest,
  createProposal,
  GovError,
  getBallot,
  getProposal,
  getStateDigest,
  listProposals,
  submitBallot,
  updateStateDigest,
  withdrawProposal,
} from "../gov/index.ts";
import type { Tx } from "../kv/index.ts";
import { Tables as GovTables, readJson, SINGLETON_KEY as SINGLETON, scanMap } from "../ledger/index.ts";
import { TX_HEADER } from "./answers.ts";
import { waitForCommit } from "./commit-wait.ts";
import { sendError } from "./errors.ts";
import type { RpcNode } from "./port.ts";

/** The governance API version Coco implements (CCF's names and shapes). */
export const GOV_API_VERSION = "2024-07-01";

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

function param(req: FastifyRequest, name: string): string {
  return String((req.params as Record<string, string>)[name] ?? "");
}

/** Splits `{id}:{verb}`, refusing verbs the endpoint does not have. */
function idAndVerb(segment: string, verbs: string[]): { id: string; verb: string } {
  const at = segment.lastIndexOf(":");
  const verb = at < 0 ? "" : segment.slice(at + 1);
  if (at < 0 || !verbs.includes(verb)) {
    throw new GovError(
      404,
      "ResourceNotFound",
      `expected {id}:${verbs.join("|")}, got ${JSON.stringify(segment)}`,
    );
  }
  return { id: segment.slice(0, at), verb };
}

function body(req: FastifyRequest): Uint8Array {
  return (req.body as Uint8Array | undefined) ?? new Uint8Array();
}

/** Every governance call names the API version, as CCF's clients do. */
function checkApiVersion(req: FastifyRequest): void {
  const version = (req.query as Record<string, unknown>)["api-version"];
  if (version !== GOV_API_VERSION) {
    throw new GovError(
      400,
      "UnsupportedApiVersion",
      `api-version=${GOV_API_VERSION} is required (got ${JSON.stringify(version ?? null)})`,
    );
  }
}

function guarded(handler: Handler): Handler {
  return async (req, reply) => {
    try {
      checkApiVersion(req);
      return await handler(req, reply);
    } catch (e) {
      if (e instanceof GovError) {
        if (e.retryAfterSeconds !== undefined) reply.header("retry-after", String(e.retryAfterSeconds));
        return sendError(reply, e.status, e.code, e.message);
      }
      throw e;
    }
  };
}

/** Reads run on any node, against its committed-or-newer state. */
function read<T>(node: RpcNode, work: (tx: Tx) => T): T {
  const tx = node.store.begin();
  try {
    return work(tx);
  } finally {
    tx.abandon();
  }
}

/**
 * A signed governance write. On a backup the member is sent to the primary (307), since the
 * request must run there; on the primary the answer waits until the transaction commits.
 */
async function write<T>(
  node: RpcNode,
  req: FastifyRequest,
  reply: FastifyReply,
  run: () => { result: T; seqno: number | null; view: number },
): Promise<T | FastifyReply> {
  if (!node.isPrimary) {
    const primary = node.primaryId ? node.rpcAddressOf(node.primaryId) : undefined;
    if (!primary) throw new GovError(503, "NoPrimary", "no primary is known right now; try again shortly");
    return reply.status(307).header("location", `https://${primary}${req.url}`).send();
  }
  const { result, seqno, view } = run();
  if (seqno !== null) {
    const txid = `${view}.${seqno}`;
    reply.header(TX_HEADER, txid);
    // The same bounded wait as app writes: a timeout or a rollback answers, never hangs.
    const failed = await waitForCommit(node, seqno, txid);
    if (failed) return reply.status(failed.status).headers(failed.headers).send(Buffer.from(failed.body));
  }
  return result;
}

export function registerGovRoutes(server: FastifyInstance, node: RpcNode): void {
  const gov = node.governance;

  server.post(
    "/gov/members/proposals::create",
    guarded(async (req, reply) =>
      write(node, req, reply, () =>
        gov.write(body(req), { type: "proposal" }, (tx, request, constitution) =>
          createProposal(tx, constitution, {
            memberId: request.memberId,
            body: request.payload,
            requestDigest: Buffer.from(request.coseDigest, "hex"),
            createdAt: request.createdAt,
          }),
        ),
      ),
    ),
  );
  server.get(
    "/gov/members/proposals",
    guarded(async () => ({ value: read(node, (tx) => listProposals(tx)) })),
  );
  server.get(
    "/gov/members/proposals/:proposalId",
    guarded(async (req) => {
      const { actions: _actions, ...view } = read(node, (tx) => getProposal(tx, param(req, "proposalId")));
      return view;
    }),
  );
  server.get(
    "/gov/members/proposals/:proposalId/actions",
    guarded(async (req) => read(node, (tx) => getProposal(tx, param(req, "proposalId")).actions)),
  );
  // `{id}:verb` segments are split here: the router cannot tell `:update` from `:ack` after a parameter.
  server.post(
    "/gov/members/proposals/:proposalAction",
    guarded(async (req, reply) => {
      const { id: proposalId } = idAndVerb(param(req, "proposalAction"), ["withdraw"]);
      return write(node, req, reply, () =>
        gov.write(body(req), { type: "withdrawal", proposalId }, (tx, request) =>
          withdrawProposal(tx, { memberId: request.memberId, proposalId }),
        ),
      );
    }),
  );
  server.post(
    "/gov/members/proposals/:proposalId/ballots/:memberAction",
    guarded(async (req, reply) => {
      const proposalId = param(req, "proposalId");
      const { id: memberId } = idAndVerb(param(req, "memberAction"), ["submit"]);
      return write(node, req, reply, () =>
        gov.write(body(req), { type: "ballot", proposalId, memberId }, (tx, request, constitution) =>
          submitBallot(tx, constitution, { memberId: request.memberId, proposalId, body: request.payload }),
        ),
      );
    }),
  );
  server.get(
    "/gov/members/proposals/:proposalId/ballots/:memberId",
    guarded(async (req) =>
      read(node, (tx) => getBallot(tx, param(req, "proposalId"), param(req, "memberId"))),
    ),
  );
  server.post(
    "/gov/members/state-digests/:memberAction",
    guarded(async (req, reply) => {
      const { id: memberId, verb } = idAndVerb(param(req, "memberAction"), ["update", "ack"]);
      if (verb === "update") {
        return write(node, req, reply, () =>
          gov.write(body(req), { type: "state_digest", memberId }, (tx) => updateStateDigest(tx, memberId)),
        );
      }
      await write(node, req, reply, () =>
        gov.write(body(req), { type: "ack", memberId }, (tx, request) =>
          ackStateDigest(tx, memberId, request.payload),
        ),
      );
      return reply.sent ? reply : reply.status(204).send();
    }),
  );
  server.get(
    "/gov/members/state-digests/:memberId",
    guarded(async (req) => read(node, (tx) => getStateDigest(tx, param(req, "memberId")))),
  );
  server.post(
    "/gov/recovery/members/:memberAction",
    guarded(async (req, reply) => {
      const { id: memberId } = idAndVerb(param(req, "memberAction"), ["recover"]);
      return write(node, req, reply, () =>
        gov.write(body(req), { type: "recovery_share", memberId }, (tx, request) =>
          node.acceptRecoveryShare(tx, memberId, request.payload),
        ),
      );
    }),
  );
  server.get(
    "/gov/recovery/encrypted-shares/:memberId",
    guarded(async (req) => {
      const memberId = param(req, "memberId");
      // From the commit point: a share set not committed yet may be rolled back (docs/recovery.md).
      const share = node.encryptedShareOf(memberId);
      if (!share) throw new GovError(404, "ResourceNotFound", `member ${memberId} holds no recovery share`);
      return { encryptedShare: share };
    }),
  );
  server.get(
    "/gov/service/info",
    guarded(async () =>
      read(node, (tx) => {
        const info = readJson<{
          status: string;
          cert: string;
          previous_service_identity?: string;
          recovery_count?: number;
        }>(tx, GovTables.serviceInfo, SINGLETON);
        const config = readJson<Record<string, unknown>>(tx, GovTables.serviceConfig, SINGLETON);
        return {
          status: info?.status ?? "Unknown",
          certificate: info?.cert ?? null,
          recoveryThreshold: config?.recovery_threshold ?? null,
          recoveryCount: info?.recovery_count ?? 0,
          ...(info?.previous_service_identity
            ? { previousServiceIdentity: info.previous_service_identity }
            : {}),
        };
      }),
    ),
  );
  server.get(
    "/gov/service/members",
    guarded(async () =>
      read(node, (tx) => ({
        value: entries(tx, GovTables.membersInfo).map(([memberId, info]) => {
          const cert = tx.map(GovTables.membersCerts).get(Buffer.from(memberId));
          const key = tx.map(GovTables.membersEncryptionKeys).get(Buffer.from(memberId));
          const record = info as { status?: string; member_data?: unknown; recovery_role?: string };
          return {
            memberId,
            status: record.status,
            certificate: cert ? Buffer.from(cert).toString("utf8") : null,
            memberData: record.member_data ?? null,
            ...(key ? { publicEncryptionKey: Buffer.from(key).toString("utf8") } : {}),
            ...(record.recovery_role ? { recoveryRole: record.recovery_role } : {}),
          };
        }),
      })),
    ),
  );
  server.get(
    "/gov/service/nodes",
    guarded(async () =>
      read(node, (tx) => ({
        value: entries(tx, GovTables.nodesInfo).map(([nodeId, info]) => {
          const record = info as {
            status?: string;
            cert?: string;
            rpc_address?: string;
            node_data?: unknown;
          };
          return {
            nodeId,
            status: record.status,
            // Nodes trusted by vote have their certificate in nodes.endorsed_certificates only.
            certificate: endorsedCertificate(tx, nodeId) ?? record.cert ?? null,
            rpcAddress: record.rpc_address ?? null,
            nodeData: record.node_data ?? null,
          };
        }),
      })),
    ),
  );
  server.get(
    "/gov/service/constitution",
    guarded(async (_req, reply) => {
      const text = read(node, (tx) => tx.map(GovTables.constitution).get(SINGLETON));
      return reply.type("text/javascript").send(text ? Buffer.from(text).toString("utf8") : "");
    }),
  );
  server.get(
    "/gov/service/join-policy",
    guarded(async () =>
      read(node, (tx) => ({
        virtual: { measurements: keys(tx, GovTables.nodesVirtualMeasurements) },
        snp: {
          measurements: keys(tx, GovTables.nodesSnpMeasurements),
          hostData: Object.fromEntries(entries(tx, GovTables.nodesSnpHostData)),
          tcbVersions: Object.fromEntries(entries(tx, GovTables.nodesSnpTcbVersions)),
        },
      })),
    ),
  );
  server.get(
    "/gov/service/javascript-app",
    guarded(async () =>
      read(node, (tx) => ({
        endpoints: Object.fromEntries(entries(tx, GovTables.endpoints)),
        modules: keys(tx, GovTables.modules),
      })),
    ),
  );
}

function keys(tx: Tx, map: string): string[] {
  return scanMap(tx, map).map(([key]) => Buffer.from(key).toString("utf8"));
}

/** Entries of a JSON-valued map; a value that is not JSON is returned as text. */
function entries(tx: Tx, map: string): Array<[string, unknown]> {
  return scanMap(tx, map).map(([key, value]) => {
    const text = Buffer.from(value).toString("utf8");
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return [Buffer.from(key).toString("utf8"), parsed];
  });
}

/** A node's certificate as `nodes.endorsed_certificates` records it, if any. */
function endorsedCertificate(tx: Tx, nodeId: string): string | undefined {
  const bytes = tx.map(GovTables.nodesEndorsedCertificates).get(Buffer.from(nodeId));
  return bytes ? Buffer.from(bytes).toString("utf8") : undefined;
}
