/** Shared test helpers: entries, secrets and temporary directories. */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { WriteSet } from "../../src/kv/index.ts";
import { type Entry, EntryType, encodeEntry, LedgerSecrets } from "../../src/ledger/index.ts";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function key(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

export function testSecrets(): LedgerSecrets {
  return new LedgerSecrets([{ version: 0, key: key(7) }]);
}

export function digest(text: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(text).digest());
}

/** A small entry with one public and one private map, or only public when `privateToo` is false. */
export function sampleEntry(
  seqno: number,
  opts: { view?: number; type?: EntryType; privateToo?: boolean } = {},
): Entry {
  const writeSet: WriteSet = [
    { name: "public:records", updates: [{ key: enc(`k${seqno}`), value: enc(`public value ${seqno}`) }] },
  ];
  if (opts.privateToo ?? true) {
    writeSet.push({ name: "secrets", updates: [{ key: enc("s"), value: enc(`private value ${seqno}`) }] });
  }
  return {
    seqno,
    view: opts.view ?? 2,
    type: opts.type ?? EntryType.WriteSet,
    secretVersion: 0,
    claimsDigest: new Uint8Array(32),
    commitEvidenceDigest: digest(`ce:${seqno}`),
    writeSet,
  };
}

/** Frame for seqno; every `signatureEvery`-th entry is a signature. */
export function frameFor(seqno: number, secrets: LedgerSecrets, signatureEvery = 5): Uint8Array {
  const type = seqno % signatureEvery === 0 ? EntryType.Signature : EntryType.WriteSet;
  return encodeEntry(sampleEntry(seqno, { type }), secrets);
}

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coco-ledger-"));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}
