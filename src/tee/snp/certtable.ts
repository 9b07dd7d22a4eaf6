import { derToPem } from "./certs.ts";
import { SnpError } from "./errors.ts";

/**
 * The certificate table the host attaches to an extended report (configfs-tsm `auxblob`, or the
 * SNP_GET_EXT_REPORT buffer): entries of GUID (16 bytes), offset (u32 LE), length (u32 LE), ended
 * by an all-zero entry; offsets count from the start of the table.
 */
const GUIDS: Record<string, SnpTableEntryKind> = {
  "63da758d-e664-4564-adc5-f4b93be8accd": "vcek",
  "a8074bc2-a25a-483e-aae6-39c045a0b8a1": "vlek",
  "4ab7b379-bbac-4fe4-a02f-05aef327c782": "ask",
  "c0b406a4-a803-4952-9743-3fb6014cd0ae": "ark",
  "92f81bc3-5811-4d3d-97ff-d19f88dc67ea": "crl",
};

export type SnpTableEntryKind = "vcek" | "vlek" | "ask" | "ark" | "crl";

export interface SnpCertTable {
  /** DER of each known entry. */
  entries: Partial<Record<SnpTableEntryKind, Uint8Array>>;
  /** GUIDs of entries Coco does not know, kept so they are not silently lost. */
  unknown: string[];
  /** The VCEK or VLEK, ASK and ARK as one PEM text (what verifySnpReport takes). */
  chainPem: string;
}

function guidText(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The same GUID in the mixed-endian byte order some firmware tooling writes. */
function swapped(bytes: Uint8Array): Uint8Array {
  const b = Uint8Array.from(bytes);
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

export function parseCertTable(blob: Uint8Array): SnpCertTable {
  const entries: SnpCertTable["entries"] = {};
  const unknown: string[] = [];
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let at = 0; ; at += 24) {
    if (at + 24 > blob.length) {
      if (blob.length === 0 || blob.every((b) => b === 0)) break;
      throw new SnpError(
        "acquire-failed",
        `certificate table: no terminating entry before byte ${blob.length}`,
      );
    }
    const guid = blob.subarray(at, at + 16);
    const offset = view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    if (guid.every((b) => b === 0)) break;
    if (offset + length > blob.length) {
      throw new SnpError("acquire-failed", `certificate table entry ${guidText(guid)} runs past the table`);
    }
    const kind = GUIDS[guidText(guid)] ?? GUIDS[guidText(swapped(guid))];
    if (kind) entries[kind] = blob.slice(offset, offset + length);
    else unknown.push(guidText(guid));
  }
  const chain = [entries.vcek ?? entries.vlek, entries.ask, entries.ark].filter((d) => d !== undefined);
  return { entries, unknown, chainPem: chain.map((d) => derToPem(d)).join("") };
}
