import { deepStrictEqual } from "node:assert/strict";
import { CoseError, CryptoError, verifyCoseReceipt, verifyJsonReceipt } from "../../src/crypto/index.ts";
import { crc32 } from "../../src/ledger/bytes.ts";
import {
  checkChunkEntries,
  closedChunkTailProblem,
  parseChunkName,
  scanChunk,
} from "../../src/ledger/chunks.ts";
import { decodeEntry, decodeSnapshot, decryptEntry, LedgerError } from "../../src/ledger/index.ts";
import { ledgerCorpus } from "./corpus.ts";
import { clearly, type FuzzTarget, Tally } from "./harness.ts";
import { mutated, mutatedJson } from "./mutate.ts";

/** Parsers of ledger bytes: chunk files, entry frames, snapshot files, receipts. */

const LEDGER_ERRORS = [LedgerError];

/** Rewrites an entry frame's trailing CRC-32 (little endian), so damage reaches the parser behind it. */
function fixFrameCrc(frame: Uint8Array): Uint8Array {
  if (frame.length < 4) return frame;
  const out = Buffer.from(frame);
  out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return new Uint8Array(out);
}

/** The same for a snapshot file, whose CRC-32 covers everything before it. */
const fixSnapshotCrc = fixFrameCrc;

export function ledgerTargets(): FuzzTarget<never>[] {
  const corpus = ledgerCorpus();
  const chunkTally = new Tally();
  const chunk: FuzzTarget<Uint8Array> = {
    name: "ledger-chunk",
    parser: "src/ledger/chunks.ts scanChunk + checkChunkEntries, then decryptEntry per entry",
    tally: chunkTally,
    input: mutated([corpus.chunk]),
    check(bytes) {
      const name = parseChunkName("ledger_1-6.committed")!;
      clearly(chunkTally, LEDGER_ERRORS, () => {
        const scan = scanChunk(bytes, name.file, 1);
        // A torn tail is allowed only after the last good frame; what came before must be the original.
        for (const { entry } of scan.entries) {
          const original = corpus.frames[entry.seqno - 1];
          if (!original || Buffer.compare(Buffer.from(entry.frame), Buffer.from(original)) !== 0)
            throw new Error(`scanChunk accepted a damaged frame at seqno ${entry.seqno}`);
          decryptEntry(entry, corpus.secrets);
        }
        if (!scan.torn) checkChunkEntries(name, scan.entries, 0);
        const closedTail = closedChunkTailProblem(name, scan);
        if (closedTail) throw closedTail;
      });
    },
  };
  const openTally = new Tally();
  // The open chunk as a writer leaves it: its entries, then preallocated zeros.
  const withZeroTail = new Uint8Array(Buffer.concat([corpus.chunk, Buffer.alloc(2048)]));
  const openChunk: FuzzTarget<Uint8Array> = {
    name: "ledger-open-chunk",
    parser: "src/ledger/chunks.ts scanChunk on an open chunk with a zero tail (its end, torn writes, damage)",
    tally: openTally,
    input: mutated([withZeroTail, corpus.chunk]),
    check(bytes) {
      clearly(openTally, LEDGER_ERRORS, () => {
        const scan = scanChunk(bytes, "ledger_1", 1);
        for (const { entry } of scan.entries) {
          const original = corpus.frames[entry.seqno - 1];
          if (!original || Buffer.compare(Buffer.from(entry.frame), Buffer.from(original)) !== 0)
            throw new Error(`scanChunk accepted a damaged frame at seqno ${entry.seqno}`);
        }
        // What follows the last entry is one of: nothing, zeros only (the end), or a torn write
        // that is not all zero. Anything else would cut, or keep, the wrong bytes.
        const rest = bytes.subarray(scan.goodLength);
        const restIsZero = rest.every((b) => b === 0);
        if (scan.torn) {
          if (scan.torn.offset !== scan.goodLength)
            throw new Error("a torn write reported off the last entry's end");
          if (restIsZero && scan.goodLength > 0)
            throw new Error("zeros after the last entry reported as torn");
        } else if (scan.zeroTail !== rest.length || !restIsZero) {
          throw new Error(`zeroTail ${scan.zeroTail} for ${rest.length} bytes after the last entry`);
        }
        if (!scan.torn) checkChunkEntries(parseChunkName("ledger_1")!, scan.entries, 0);
      });
    },
  };
  const entryTally = new Tally();
  const entry: FuzzTarget<Uint8Array> = {
    name: "ledger-entry",
    parser: "src/ledger/entry.ts decodeEntry + decryptEntry (checksum repaired after damage)",
    tally: entryTally,
    input: mutated(corpus.frames, fixFrameCrc),
    check(bytes) {
      clearly(entryTally, [...LEDGER_ERRORS, CryptoError], () => {
        const decoded = decodeEntry(bytes);
        decryptEntry(decoded, corpus.secrets);
      });
    },
  };
  const snapshotTally = new Tally();
  const snapshot: FuzzTarget<Uint8Array> = {
    name: "snapshot-file",
    parser: "src/ledger/snapshot.ts decodeSnapshot (checksum repaired after damage half the time)",
    tally: snapshotTally,
    input: mutated([corpus.snapshot], fixSnapshotCrc),
    check(bytes) {
      clearly(snapshotTally, [...LEDGER_ERRORS, CryptoError], () => decodeSnapshot(bytes, corpus.secrets));
    },
  };
  const jsonTally = new Tally();
  const originalsJson = corpus.jsonReceipts.map((r) => (r as { leaf_components: unknown }).leaf_components);
  const jsonReceipt: FuzzTarget<unknown> = {
    name: "receipt-json",
    parser: "src/crypto/receipt.ts verifyJsonReceipt (what `coco receipt verify` runs on a JSON receipt)",
    tally: jsonTally,
    input: mutatedJson(corpus.jsonReceipts),
    check(receipt) {
      const result = clearly(jsonTally, [], () => verifyJsonReceipt(receipt, corpus.serviceCertPem));
      if (!result?.ok) {
        jsonTally.refused++;
        return;
      }
      // A receipt that still verifies must still be about one of the original transactions.
      const leaf = (receipt as { leaf_components: unknown }).leaf_components;
      if (!originalsJson.some((o) => isDeepEqual(o, leaf)))
        throw new Error("a damaged receipt verified for a new leaf");
    },
  };
  const coseTally = new Tally();
  const coseReceipt: FuzzTarget<Uint8Array> = {
    name: "receipt-cose",
    parser: "src/crypto/receipt.ts verifyCoseReceipt (what `coco receipt verify` runs on a COSE receipt)",
    tally: coseTally,
    input: mutated(corpus.coseReceipts),
    check(bytes) {
      const result = clearly(coseTally, [CoseError], () => verifyCoseReceipt(bytes, corpus.serviceCertPem));
      if (result && !result.ok) coseTally.refused++;
    },
  };
  return [chunk, openChunk, entry, snapshot, jsonReceipt, coseReceipt] as FuzzTarget<never>[];
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
