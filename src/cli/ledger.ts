import { readFileSync, statSync } from "node:fs";
import type { WriteSet } from "../kv/index.ts";
import { decryptEntry, EntryType, LedgerSecrets, readLedgerDir } from "../ledger/index.ts";
import { type AuditReport, auditLedger, loadIdentity, readSignatureEntry } from "../node/index.ts";
import { CliError } from "./fail.ts";

/** Refuses, in words, a ledger directory that is not there (before any "invalid ledger" verdict). */
function checkLedgerDir(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new CliError(`no such directory: ${dir}`);
  }
  if (!isDir)
    throw new CliError(
      `${dir} is not a directory (give a node's ledger directory, e.g. workspace/node0/ledger)`,
    );
}

const printable = /^[\x20-\x7e\n\t]*$/;

const SHOWN_CHARS = 96;

/** A value as one readable line: quoted text or hex, cut short with its size (`--json` has it all). */
function show(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString("utf8");
  const full = printable.test(text) ? JSON.stringify(text) : `0x${Buffer.from(bytes).toString("hex")}`;
  return full.length <= SHOWN_CHARS ? full : `${full.slice(0, SHOWN_CHARS)}... (${bytes.length} bytes)`;
}

/** Prints every transaction; private maps only when the node's directory (and so its secrets) is given. */
export async function readLedger(
  dir: string,
  opts: { nodeDir?: string; json?: boolean },
  out: (line: string) => void,
): Promise<void> {
  checkLedgerDir(dir);
  let secrets: LedgerSecrets | undefined;
  if (opts.nodeDir) {
    const identity = loadIdentity(opts.nodeDir);
    secrets = new LedgerSecrets(
      identity.ledgerSecrets.map((s) => ({
        version: s.version,
        key: new Uint8Array(Buffer.from(s.key, "base64")),
      })),
    );
  }
  for await (const { entry } of readLedgerDir(dir)) {
    const writeSet: WriteSet = secrets ? decryptEntry(entry, secrets) : entry.publicWriteSet;
    const type = entry.type === EntryType.Signature ? "signature" : "write set";
    if (opts.json) {
      out(
        JSON.stringify({
          txid: `${entry.view}.${entry.seqno}`,
          type,
          private_domain: entry.hasPrivate ? (secrets ? "decrypted" : "encrypted") : "none",
          maps: writeSet.map((m) => ({
            name: m.name,
            updates: m.updates.map((u) => ({
              key: Buffer.from(u.key).toString("hex"),
              value: u.value === null ? null : Buffer.from(u.value).toString("base64"),
            })),
          })),
        }),
      );
      continue;
    }
    const hidden = entry.hasPrivate && !secrets ? " (+ encrypted private domain)" : "";
    out(`${entry.view}.${entry.seqno} ${type}${hidden}`);
    if (entry.type === EntryType.Signature) {
      const { record } = readSignatureEntry(entry);
      out(
        `  node ${record.node} signed Merkle root ${record.root} (commit was ${record.commit_view}.${record.commit_seqno})`,
      );
      continue;
    }
    for (const map of writeSet) {
      for (const u of map.updates) {
        out(`  ${map.name} ${show(u.key)} ${u.value === null ? "<removed>" : `= ${show(u.value)}`}`);
      }
    }
  }
}

export async function auditLedgerDir(dir: string, serviceCertPath: string): Promise<AuditReport> {
  checkLedgerDir(dir);
  let cert: string;
  try {
    cert = readFileSync(serviceCertPath, "utf8");
  } catch (e) {
    throw new CliError(`cannot read service certificate ${serviceCertPath}: ${(e as Error).message}`);
  }
  return auditLedger(dir, cert);
}
