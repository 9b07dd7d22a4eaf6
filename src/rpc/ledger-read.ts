import type { TLSSocket } from "node:tls";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { toHex } from "../crypto/index.ts";
import { parseTxId } from "../kv/index.ts";
import { type DecodedEntry, decodeEntry, EntryType, leafOf, scanMap, Tables } from "../ledger/index.ts";
import { authenticate, identifyPeer } from "./auth.ts";
import { sendError } from "./errors.ts";
import type { RpcNode } from "./port.ts";

/** Entries per request: a page of the console's explorer. */
const MAX_ENTRIES = 100;
/** Keys and values longer than this are cut in the answer (the digests still cover all of them). */
const MAX_SHOWN_BYTES = 1024;

interface Bytes {
  /** The bytes as UTF-8 text, when they are printable text. */
  text?: string;
  /** Hex of the bytes, when they are not text. */
  hex?: string;
  length: number;
  /** Only the first MAX_SHOWN_BYTES are shown. */
  truncated?: true;
}

function isPrintable(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f || c === 0xfffd) return false;
  }
  return true;
}

function shown(bytes: Uint8Array): Bytes {
  const cut = bytes.subarray(0, MAX_SHOWN_BYTES);
  const text = Buffer.from(cut).toString("utf8");
  // A replacement character means the bytes were not UTF-8 (or were cut inside a character).
  const out: Bytes = isPrintable(text)
    ? { text, length: bytes.length }
    : { hex: toHex(cut), length: bytes.length };
  if (cut.length < bytes.length) out.truncated = true;
  return out;
}

/** What anyone may see of one entry without the ledger secret: the public domain, digests, sizes. */
function describe(node: RpcNode, entry: DecodedEntry) {
  // Frame: 12-byte header (public size at offset 8), public domain, private domain, 4-byte CRC.
  const frame = new DataView(entry.frame.buffer, entry.frame.byteOffset, entry.frame.byteLength);
  const privateBytes = entry.hasPrivate ? entry.frame.length - 16 - frame.getUint32(8, true) : 0;
  return {
    seqno: entry.seqno,
    view: entry.view,
    transaction_id: `${entry.view}.${entry.seqno}`,
    status: node.txStatus(entry.view, entry.seqno),
    type: entry.type === EntryType.Signature ? "signature" : "write_set",
    size: entry.frame.length,
    secret_version: entry.secretVersion,
    claims_digest: toHex(entry.claimsDigest),
    commit_evidence_digest: toHex(entry.commitEvidenceDigest),
    write_set_digest: toHex(entry.writeSetDigest),
    leaf: toHex(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest)),
    public_writes: entry.publicWriteSet.map((map) => ({
      map: map.name,
      updates: map.updates.map((u) =>
        u.value === null
          ? { key: shown(u.key), removed: true }
          : { key: shown(u.key), value: shown(u.value) },
      ),
    })),
    // The private write set (map names included) is AES-GCM ciphertext: only its size is known here.
    private_domain: entry.hasPrivate ? { encrypted: true, bytes: privateBytes } : null,
  };
}

function seqnoParam(value: unknown, name: string): number | string {
  if (value === undefined) return Number.NaN;
  if (typeof value !== "string" || !/^[0-9]{1,15}$/.test(value) || Number(value) < 1) {
    return `${name} must be a seqno (an integer from 1)`;
  }
  return Number(value);
}

/**
 * Read-only views for the console (docs/console.md): ledger entries by seqno or TxID, for members
 * only (`member_cert`), and the users table, public like `/gov/service/members`. Nothing here
 * writes, and nothing private is decrypted: a private write set is reported by its size alone.
 */
export function registerLedgerReadRoutes(server: FastifyInstance, node: RpcNode): void {
  server.get("/node/ledger/entries", async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = authenticate(["member_cert"], identifyPeer(req.raw.socket as TLSSocket, node.store));
    if (!auth.ok) return sendError(reply, auth.status, auth.code, auth.message);
    const query = req.query as Record<string, unknown>;
    let from: number;
    let to: number;
    let view: number | undefined;
    if (query.transaction_id !== undefined) {
      try {
        const id = parseTxId(String(query.transaction_id));
        from = to = id.seqno;
        view = id.view;
      } catch (e) {
        return sendError(reply, 400, "InvalidQueryParameterValue", (e as Error).message);
      }
    } else {
      const f = seqnoParam(query.from, "from");
      if (typeof f === "string") return sendError(reply, 400, "InvalidQueryParameterValue", f);
      if (Number.isNaN(f)) {
        return sendError(
          reply,
          400,
          "InvalidQueryParameterValue",
          "from=<seqno> or transaction_id is required",
        );
      }
      const t = seqnoParam(query.to, "to");
      if (typeof t === "string") return sendError(reply, 400, "InvalidQueryParameterValue", t);
      from = f;
      to = Number.isNaN(t) ? f + MAX_ENTRIES - 1 : Math.min(t, f + MAX_ENTRIES - 1);
      if (to < from) return sendError(reply, 400, "InvalidQueryParameterValue", "to must not be below from");
    }
    const frames = await node.ledgerFrames(from, to);
    const entries = frames.map((frame) => describe(node, decodeEntry(frame)));
    if (view !== undefined && entries[0]?.view !== view) {
      return sendError(
        reply,
        404,
        "TransactionNotFound",
        `transaction ${query.transaction_id} is not in this node's ledger` +
          (entries[0] ? ` (seqno ${from} is ${entries[0].transaction_id})` : ""),
      );
    }
    return {
      entries,
      last_seqno: Number(node.currentTxId().split(".")[1]),
      commit_transaction_id: node.commitTxId(),
    };
  });

  server.get("/gov/service/users", async () => {
    const tx = node.store.begin();
    try {
      const certs = new Map(scanMap(tx, Tables.usersCerts).map(([k, v]) => [Buffer.from(k).toString(), v]));
      const info = new Map(scanMap(tx, Tables.usersInfo).map(([k, v]) => [Buffer.from(k).toString(), v]));
      return {
        value: [...certs].map(([userId, cert]) => {
          const data = info.get(userId);
          let userData: unknown = null;
          if (data) {
            try {
              userData =
                (JSON.parse(Buffer.from(data).toString()) as { user_data?: unknown }).user_data ?? null;
            } catch {}
          }
          return { userId, certificate: Buffer.from(cert).toString("utf8"), userData };
        }),
      };
    } finally {
      tx.abandon();
    }
  });
}
