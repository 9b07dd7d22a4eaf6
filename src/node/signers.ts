/**
 * Who may sign the ledger. A signature transaction counts only if, at that point of the ledger
 * (the state just before it), its signer is a node `nodes.info` records as Trusted, the
 * certificate it carries is the one `nodes.endorsed_certificates` records for that node (or a
 * renewal of it: same key, issued by the service), and the signer is the one primary of its view:
 * the first signature of a view fixes who signs in it, and a second signer is refused. On live
 * replication the backup also knows which node sent the entries of the current view (the
 * primary it follows), and that node must be the signer.
 *
 * The rules read only public tables, so a backup (from its replicated entries), a restarting
 * node (from its ledger files, with or without a snapshot) and an auditor (with no secrets) all
 * apply them the same way. Deterministic: no clock, no I/O.
 */
import { equalBytes, publicKeyDer, verifyIssuedBy } from "../crypto/index.ts";
import type { WriteSet } from "../kv/index.ts";
import {
  fromUtf8,
  type NodeInfo,
  parseJsonBytes,
  type ServiceInfo,
  type SignatureRecord,
  Tables,
} from "../ledger/index.ts";
import { SignatureCheckError } from "./signatures.ts";

/** The node a backup follows in the view it is in: the sender of that view's entries. */
export interface ReplicationSource {
  view: number;
  /** Null when the backup knows no primary (then only the ledger's own rules apply). */
  primary: string | null;
}

/** A string-keyed table as it changed entry by entry, so a rollback can undo it. */
class VersionedTable<T> {
  private readonly rows = new Map<string, Array<{ seqno: number; value: T | undefined }>>();

  set(key: string, seqno: number, value: T | undefined): void {
    const versions = this.rows.get(key);
    if (!versions) this.rows.set(key, [{ seqno, value }]);
    else if (versions.at(-1)!.seqno === seqno) versions.at(-1)!.value = value;
    else versions.push({ seqno, value });
  }

  get(key: string): T | undefined {
    return this.rows.get(key)?.at(-1)?.value;
  }

  rollback(seqno: number): void {
    for (const [key, versions] of this.rows) {
      while ((versions.at(-1)?.seqno ?? 0) > seqno) versions.pop();
      if (versions.length === 0) this.rows.delete(key);
    }
  }
}

const SERVICE = "service";

/** The facts about one node the rules need (a `nodes.info` value, parsed). */
type NodeStatus = NodeInfo["status"];

export class SigningRules {
  private nodes = new VersionedTable<NodeStatus>();
  private endorsed = new VersionedTable<string>();
  private service = new VersionedTable<ServiceInfo>();
  /** The node that signed each view, fixed by the view's first signature; oldest view first. */
  private viewSigners: Array<{ view: number; node: string; seqno: number }> = [];

  /** Takes the writes of entry `seqno` to the tables the rules read (others are ignored). */
  noteWrites(seqno: number, writeSet: WriteSet): void {
    for (const map of writeSet) {
      if (map.name === Tables.nodesInfo) {
        for (const { key, value } of map.updates)
          this.nodes.set(fromUtf8(key), seqno, value ? parseNodeStatus(value) : undefined);
      } else if (map.name === Tables.nodesEndorsedCertificates) {
        for (const { key, value } of map.updates)
          this.endorsed.set(fromUtf8(key), seqno, value ? fromUtf8(value) : undefined);
      } else if (map.name === Tables.serviceInfo) {
        const value = map.updates.at(-1)?.value;
        this.service.set(SERVICE, seqno, value ? parseJson<ServiceInfo>(value) : undefined);
      }
    }
  }

  /**
   * Starts from a snapshot's store: `read` gives a whole framework table as of `seqno`. The
   * snapshot's anchor signature is then checked and noted like any other.
   */
  seed(seqno: number, read: (table: string) => Array<[string, Uint8Array]>): void {
    const writes: WriteSet = [Tables.nodesInfo, Tables.nodesEndorsedCertificates, Tables.serviceInfo].map(
      (name) => ({
        name,
        updates: read(name).map(([key, value]) => ({ key: new TextEncoder().encode(key), value })),
      }),
    );
    this.noteWrites(seqno, writes);
  }

  /** The service identity recorded in `service.info` at this point, if any. */
  serviceInfo(): ServiceInfo | undefined {
    return this.service.get(SERVICE);
  }

  /** The node that signs `view`, once a signature of that view has been seen. */
  signerOf(view: number): string | undefined {
    for (let i = this.viewSigners.length - 1; i >= 0; i--) {
      const signer = this.viewSigners[i]!;
      if (signer.view === view) return signer.node;
      if (signer.view < view) return undefined;
    }
    return undefined;
  }

  /**
   * Throws a SignatureCheckError naming the rule a signature transaction at `seqno`, in an entry
   * of view `view`, breaks. Call it with the state just before that entry. `snapshotAnchor`: the
   * signature a snapshot starts from, whose view's earlier signatures are not known here (a
   * retiring primary may have made it; the service's COSE signature over it is checked too).
   */
  check(
    seqno: number,
    view: number,
    record: SignatureRecord,
    source?: ReplicationSource,
    snapshotAnchor = false,
  ): void {
    const node = record.node;
    if (record.view !== view) {
      throw new SignatureCheckError(
        seqno,
        `signature record claims view ${record.view} in an entry of view ${view}`,
      );
    }
    const signer = this.signerOf(view);
    const status = this.nodes.get(node);
    // A retiring primary keeps signing its view until its removal commits and it hands over;
    // it cannot start a view once retired.
    const mayContinue = status === "Retired" && (signer === node || (snapshotAnchor && signer === undefined));
    if (status !== "Trusted" && !mayContinue) {
      throw new SignatureCheckError(
        seqno,
        `signed by node ${node} which is not Trusted at seqno ${seqno} (${status ? `it is ${status}` : "no such node"})`,
      );
    }
    const endorsed = this.endorsed.get(node);
    if (endorsed === undefined) {
      throw new SignatureCheckError(
        seqno,
        `signed by node ${node}, which has no endorsed certificate at seqno ${seqno}`,
      );
    }
    if (record.cert !== endorsed) {
      const problem = this.renewalProblem(record.cert, endorsed);
      if (problem) {
        throw new SignatureCheckError(
          seqno,
          `the certificate in the signature is not node ${node}'s endorsed certificate: ${problem}`,
        );
      }
    }
    if (signer !== undefined && signer !== node) {
      throw new SignatureCheckError(seqno, `view ${view} signed by two nodes: ${signer} and ${node}`);
    }
    if (source && source.primary !== null && source.view === view && node !== source.primary) {
      throw new SignatureCheckError(
        seqno,
        `signed by node ${node}, but view ${view}'s entries come from its primary ${source.primary}`,
      );
    }
  }

  /**
   * Why `cert` is not an acceptable stand-in for the endorsed one (undefined if it is): a node
   * signs with its previous certificate until it adopts a renewal, and a renewal may be rolled
   * back, so any certificate for the same key that the service issued is that node's.
   */
  private renewalProblem(cert: string, endorsed: string): string | undefined {
    let sameKey: boolean;
    try {
      sameKey = equalBytes(publicKeyDer(cert), publicKeyDer(endorsed));
    } catch (e) {
      return `it cannot be read (${(e as Error).message})`;
    }
    if (!sameKey) return "its key differs";
    const service = this.serviceInfo()?.cert;
    if (!service) return "no service identity is recorded to have issued it";
    const issued = verifyIssuedBy(cert, service);
    return issued.ok ? undefined : `it is not issued by the service (${issued.reason})`;
  }

  /** A signature was accepted (or made by this node): the first one of its view fixes its signer. */
  noteSignature(seqno: number, view: number, node: string): void {
    const last = this.viewSigners.at(-1);
    if (last && last.view >= view) return;
    this.viewSigners.push({ view, node, seqno });
  }

  /** Forgets everything entries after `seqno` taught. */
  rollback(seqno: number): void {
    this.nodes.rollback(seqno);
    this.endorsed.rollback(seqno);
    this.service.rollback(seqno);
    while ((this.viewSigners.at(-1)?.seqno ?? 0) > seqno) this.viewSigners.pop();
  }
}

function parseNodeStatus(value: Uint8Array): NodeStatus | undefined {
  return parseJson<NodeInfo>(value)?.status;
}

/** A table value as JSON; undefined if it is not (such a row then grants nothing). */
function parseJson<T>(value: Uint8Array): T | undefined {
  try {
    return parseJsonBytes<T>(value);
  } catch {
    return undefined;
  }
}
