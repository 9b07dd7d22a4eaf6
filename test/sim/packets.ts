import type { NodeId, SnapshotPoint } from "../../src/consensus/index.ts";
import type { ClientOp } from "./app.ts";

/** What crosses the simulated network (nodes and clients alike), and how a trace prints it. */

export interface ClientRequest {
  client: string;
  requestId: string;
  op: ClientOp;
}

export type ClientReply =
  | { requestId: string; status: "ok"; value?: string }
  | { requestId: string; status: "not_primary"; leader: NodeId | null };

export type Packet =
  | { kind: "raft"; message: unknown }
  | { kind: "snapshot"; point: SnapshotPoint; bytes: Uint8Array }
  | { kind: "request"; request: ClientRequest }
  | { kind: "reply"; reply: ClientReply };

export function describePacket(packet: Packet): string {
  switch (packet.kind) {
    case "raft": {
      const m = packet.message as Record<string, unknown>;
      const parts = [`${m.type} v${m.view}`];
      if (m.type === "append_entries") {
        const entries = m.entries as Array<{ seqno: number; isSignature: boolean }>;
        parts.push(`prev ${m.prevView}.${m.prevSeqno} +${entries.length} commit ${m.commitSeqno}`);
      } else if (m.type === "append_entries_response") {
        parts.push(
          m.success
            ? `ok match ${m.matchSeqno} durable ${m.durableSeqno}`
            : `reject ${m.rejectedPrev} last ${m.lastSeqno} hint ${m.conflictView}@${m.conflictFirst}`,
        );
      } else if (m.type === "pre_vote_response" || m.type === "request_vote_response") {
        parts.push(m.granted ? "granted" : "refused");
      } else if (m.type === "pre_vote" || m.type === "request_vote") {
        parts.push(`last ${m.lastView}.${m.lastSeqno}`);
      }
      return parts.join(" ");
    }
    case "snapshot":
      return `snapshot ${packet.point.view}.${packet.point.seqno}`;
    case "request":
      return `request ${packet.request.requestId} ${packet.request.op.kind} ${packet.request.op.key}`;
    case "reply":
      return `reply ${packet.reply.requestId} ${packet.reply.status}`;
  }
}
