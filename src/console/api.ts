import type { FastifyInstance, FastifyReply } from "fastify";
import { CocoClientError } from "../client/index.ts";
import { certFingerprint, parseCertificate } from "../crypto/index.ts";
import { decryptShare, toBase64 } from "../recovery/index.ts";
import { consoleError } from "./errors.ts";
import type { Gateway, NodeAnswer } from "./gateway.ts";
import type { NetworkMonitor } from "./monitor.ts";

/** Every governance call names the API version (docs/governance.md). */
const GOV_API = "api-version=2024-07-01";
const HEX64 = /^[0-9a-f]{64}$/;
const TXID = /^[0-9]{1,15}\.[0-9]{1,15}$/;

function fail(reply: FastifyReply, what: string, status: number, code: string, message: string) {
  return reply.status(status).send({ error: consoleError(what, status, code, message) });
}

/** A node's answer passed on, or its error explained. */
function relay<T>(reply: FastifyReply, what: string, answer: NodeAnswer<T>, shape?: (body: T) => unknown) {
  if (!answer.ok) return fail(reply, what, answer.status, answer.code, answer.message);
  return shape ? shape(answer.body) : answer.body;
}

async function governed<T>(reply: FastifyReply, what: string, work: () => Promise<T>) {
  try {
    return await work();
  } catch (e) {
    if (e instanceof CocoClientError) return fail(reply, what, e.status || 502, e.code, e.message);
    throw e;
  }
}

interface Proposal {
  proposalId: string;
  proposerId: string;
  proposalState: string;
  ballotCount: number;
  finalVotes?: Record<string, boolean>;
  voteFailures?: Record<string, { reason: string }>;
  failure?: { reason: string };
}

/** The console's JSON API under /api: what the pages read and the actions they take. */
export function registerApi(server: FastifyInstance, gateway: Gateway, monitor: NetworkMonitor): void {
  const identity = gateway.identity;
  /** A proposal's actions never change: fetched once. */
  const actionsCache = new Map<string, unknown>();

  server.get("/api/session", async () => {
    const service = parseCertificate(identity.serviceCertPem);
    return {
      memberId: identity.memberId,
      subject: identity.subject,
      recoveryKey: identity.encryptionKeyPem !== undefined,
      serviceCertificate: identity.serviceCertPem,
      serviceCertificateId: certFingerprint(identity.serviceCertPem),
      serviceSubject: service.subject,
      serviceValidTo: service.notAfter.toISOString(),
      nodes: gateway.addresses(),
    };
  });

  server.get("/api/network", async () => monitor.view());

  server.get("/api/gov/members", async (_req, reply) =>
    relay(reply, "Read the members", await gateway.read(`/gov/service/members?${GOV_API}`)),
  );
  server.get("/api/gov/users", async (_req, reply) =>
    relay(reply, "Read the users", await gateway.read("/gov/service/users")),
  );
  server.get("/api/gov/info", async (_req, reply) =>
    relay(reply, "Read the service's information", await gateway.read(`/gov/service/info?${GOV_API}`)),
  );
  server.get("/api/gov/constitution", async (_req, reply) =>
    relay(
      reply,
      "Read the constitution",
      await gateway.read<string>(`/gov/service/constitution?${GOV_API}`),
      (text) => ({ constitution: text }),
    ),
  );

  server.get("/api/gov/proposals", async (_req, reply) => {
    const what = "Read the proposals";
    const list = await gateway.read<{ value: Proposal[] }>(`/gov/members/proposals?${GOV_API}`);
    if (!list.ok) return fail(reply, what, list.status, list.code, list.message);
    const members = await gateway.read<{ value: Array<{ memberId: string }> }>(
      `/gov/service/members?${GOV_API}`,
    );
    const memberIds = members.ok ? members.body.value.map((m) => m.memberId) : [identity.memberId];
    const proposals = await Promise.all(
      list.body.value.map(async (p) => {
        if (!actionsCache.has(p.proposalId)) {
          const actions = await gateway.read(`/gov/members/proposals/${p.proposalId}/actions?${GOV_API}`);
          if (actions.ok) actionsCache.set(p.proposalId, actions.body);
        }
        const ballots: Record<string, string> = {};
        if (p.ballotCount > 0) {
          await Promise.all(
            memberIds.map(async (memberId) => {
              const b = await gateway.read<{ ballot: string }>(
                `/gov/members/proposals/${p.proposalId}/ballots/${memberId}?${GOV_API}`,
              );
              if (b.ok) ballots[memberId] = b.body.ballot;
            }),
          );
        }
        return { ...p, actions: actionsCache.get(p.proposalId) ?? null, ballots };
      }),
    );
    return { proposals };
  });

  server.post("/api/gov/proposals", async (req, reply) => {
    const what = "Create the proposal";
    const proposal = req.body as { actions?: unknown } | null;
    if (!proposal || !Array.isArray(proposal.actions) || proposal.actions.length === 0) {
      return fail(
        reply,
        what,
        400,
        "InvalidInput",
        'a proposal is {"actions": [{"name": ..., "args": {...}}]}',
      );
    }
    for (const action of proposal.actions as Array<{ name?: unknown }>) {
      if (typeof action?.name !== "string" || action.name.length === 0) {
        return fail(reply, what, 400, "InvalidInput", "every action needs a name");
      }
    }
    return governed(reply, what, () =>
      gateway.governance((gov) =>
        gov.propose(proposal as { actions: Array<{ name: string; args?: unknown }> }),
      ),
    );
  });

  server.post("/api/gov/proposals/:id/ballot", async (req, reply) => {
    const what = "Submit the ballot";
    const id = (req.params as { id: string }).id;
    const ballot = (req.body as { ballot?: unknown } | null)?.ballot;
    if (!HEX64.test(id)) return fail(reply, what, 400, "InvalidInput", "a proposal id is 64 hex digits");
    if (typeof ballot !== "string" || !/export\s+function\s+vote/.test(ballot)) {
      return fail(
        reply,
        what,
        400,
        "InvalidInput",
        "a ballot is a script exporting function vote (proposal, proposerId)",
      );
    }
    return governed(reply, what, () => gateway.governance((gov) => gov.vote(id, ballot)));
  });

  server.post("/api/gov/proposals/:id/withdraw", async (req, reply) => {
    const what = "Withdraw the proposal";
    const id = (req.params as { id: string }).id;
    if (!HEX64.test(id)) return fail(reply, what, 400, "InvalidInput", "a proposal id is 64 hex digits");
    return governed(reply, what, () => gateway.governance((gov) => gov.withdraw(id)));
  });

  server.get("/api/ledger/entries", async (req, reply) => {
    const q = req.query as { from?: string; to?: string; txid?: string };
    if (q.txid !== undefined) {
      if (!TXID.test(q.txid)) {
        return fail(
          reply,
          "Find the transaction",
          400,
          "InvalidQueryParameterValue",
          "a TxID is <view>.<seqno>, e.g. 2.15",
        );
      }
      return relay(
        reply,
        `Find transaction ${q.txid}`,
        await gateway.read(`/node/ledger/entries?transaction_id=${q.txid}`),
      );
    }
    const from = Number(q.from ?? "1");
    const to = q.to === undefined ? from + 49 : Number(q.to);
    if (!Number.isSafeInteger(from) || from < 1 || !Number.isSafeInteger(to) || to < from) {
      return fail(
        reply,
        "Read the ledger",
        400,
        "InvalidQueryParameterValue",
        "from and to are seqnos, from <= to",
      );
    }
    return relay(reply, "Read the ledger", await gateway.read(`/node/ledger/entries?from=${from}&to=${to}`));
  });

  server.get("/api/ledger/receipt", async (req, reply) => {
    const txid = (req.query as { txid?: string }).txid ?? "";
    const what = `Fetch the receipt of ${txid || "the transaction"}`;
    if (!TXID.test(txid)) {
      return fail(reply, what, 400, "InvalidQueryParameterValue", "a TxID is <view>.<seqno>, e.g. 2.15");
    }
    const answer = await gateway.read<unknown>(`/app/receipt?transaction_id=${txid}`);
    if (answer.ok && answer.status === 202) {
      return fail(
        reply,
        what,
        409,
        "TransactionPending",
        `${txid} is not committed yet, or no signature covers it yet`,
      );
    }
    return relay(reply, what, answer, (receipt) => ({ receipt }));
  });

  server.get("/api/recovery", async (_req, reply) => {
    const info = await gateway.read<Record<string, unknown>>(`/gov/service/info?${GOV_API}`);
    if (!info.ok) return fail(reply, "Read the recovery state", info.status, info.code, info.message);
    const share = await gateway.read<{ encryptedShare: string }>(
      `/gov/recovery/encrypted-shares/${identity.memberId}?${GOV_API}`,
    );
    return {
      ...info.body,
      memberId: identity.memberId,
      holdsShare: share.ok,
      recoveryKey: identity.encryptionKeyPem !== undefined,
    };
  });

  server.post("/api/recovery/share", async (_req, reply) => {
    const what = "Submit this member's recovery share";
    const key = identity.encryptionKeyPem;
    if (!key)
      return fail(reply, what, 400, "NoEncryptionKey", "the console was started without an encryption key");
    return governed(reply, what, () =>
      gateway.governance(async (gov) =>
        gov.submitShare(toBase64(decryptShare(await gov.encryptedShare(), key))),
      ),
    );
  });
}
