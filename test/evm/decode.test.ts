import assert from "node:assert/strict";
import { test } from "node:test";
import { RLP } from "@ethereumjs/rlp";
import {
  type Capability,
  createAccessList2930Tx,
  createFeeMarket1559Tx,
  createLegacyTx,
  createTxFromRLP,
  type TypedTransaction,
} from "@ethereumjs/tx";
import { bytesToHex, SECP256K1_ORDER } from "@ethereumjs/util";
import fc from "fast-check";
import { decodeSignedTx } from "../../src/evm/decode.ts";
import { sharedCommonFor } from "../../src/evm/vm.ts";

/**
 * The direct decoder (src/evm/decode.ts) against ethereumjs's `createTxFromRLP`, on generated
 * legacy (EIP-155), EIP-2930 and EIP-1559 transactions and on malformed variants of them. Whatever
 * the direct decoder takes, ethereumjs must take too and build the same transaction: the same
 * class, fields, frozen state, hash, signing message, sender, JSON and re-encoding. What it does not
 * take is decoded by ethereumjs, as before; well-formed transactions of the three types must all be
 * taken (or the path would silently never run).
 */

const CHAIN = 0xc0c0n;
const opts = { common: sharedCommonFor(CHAIN) };
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

/** Everything observable of a transaction, as plain data. */
function observe(tx: TypedTransaction) {
  const attempt = (f: () => unknown) => {
    try {
      const v = f();
      return v instanceof Uint8Array ? bytesToHex(v) : v;
    } catch (e) {
      return `throws: ${(e as Error).message}`;
    }
  };
  const t = tx as unknown as Record<string, unknown>;
  const fields = Object.keys(t)
    .filter((k) => k !== "common" && k !== "cache" && k !== "txOptions" && k !== "keccakFunction")
    .map((k) => [
      k,
      typeof t[k] === "bigint" ? `${t[k]}n` : t[k] instanceof Uint8Array ? bytesToHex(t[k]) : t[k],
    ]);
  return JSON.parse(
    JSON.stringify(
      {
        proto: Object.getPrototypeOf(tx).constructor.name,
        keys: Object.keys(t),
        fields,
        frozen: Object.isFrozen(tx),
        chainId: `${tx.common.chainId()}`,
        sameOptions: tx.txOptions === opts,
        keccak:
          t.keccakFunction === undefined ? "none" : t.keccakFunction === opts.common.customCrypto.keccak256,
        hash: attempt(() => tx.hash()),
        serialized: attempt(() => tx.serialize()),
        message: attempt(() => tx.getHashedMessageToSign()),
        sender: attempt(() => tx.getSenderPublicKey()),
        address: attempt(() => tx.getSenderAddress().toString()),
        json: tx.toJSON(),
        signed: tx.isSigned(),
        capabilities: [155, 1559, 2718, 2930, 7702].map((c) => tx.supports(c as Capability)),
        intrinsic: `${tx.getIntrinsicGas()}`,
        upfront: `${tx.getUpfrontCost()}`,
        valid: attempt(() => tx.getValidationErrors()),
      },
      (_, v) => (typeof v === "bigint" ? `${v}n` : v),
    ),
  );
}

function reference(bytes: Uint8Array): TypedTransaction | string {
  try {
    return createTxFromRLP(bytes, opts);
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

let taken = 0;
/** Direct and ethereumjs agree on `bytes`; answers whether the direct decoder took it. */
function agree(bytes: Uint8Array): boolean {
  const ref = reference(bytes);
  const direct = decodeSignedTx(bytes, opts);
  if (direct === undefined) return false;
  assert.notEqual(
    typeof ref,
    "string",
    `the direct decoder took what ethereumjs refuses (${ref}): ${bytesToHex(bytes)}`,
  );
  assert.deepEqual(observe(direct), observe(ref as TypedTransaction), bytesToHex(bytes));
  taken++;
  return true;
}

const bigUint = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
const smallOrBig = (bits: number) => fc.oneof(fc.bigInt({ min: 0n, max: 300n }), bigUint(bits));
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const address = fc.uint8Array({ minLength: 20, maxLength: 20 });
const accessList = fc.array(
  fc.tuple(address, fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 3 })),
  { maxLength: 3 },
);
const common = fc.record({
  nonce: fc.oneof(smallOrBig(63), fc.constant((1n << 64n) - 2n)),
  gasLimit: fc.oneof(fc.bigInt({ min: 21_000n, max: 10_000_000n }), bigUint(64)),
  to: fc.option(address, { nil: undefined }),
  value: smallOrBig(256),
  data: fc.oneof(bytes(80), fc.constant(new Uint8Array(0))),
});

/** A signed transaction of one of the three types, as ethereumjs signs it. */
const signed = fc.oneof(
  fc
    .record({ c: common, gasPrice: smallOrBig(64) })
    .map(({ c, gasPrice }) => createLegacyTx({ ...c, gasPrice }, opts).sign(KEY)),
  fc
    .record({ c: common, gasPrice: smallOrBig(64), accessList })
    .map(({ c, gasPrice, accessList }) =>
      createAccessList2930Tx({ ...c, gasPrice, accessList, chainId: CHAIN }, opts).sign(KEY),
    ),
  fc
    .record({ c: common, tip: smallOrBig(64), extra: smallOrBig(64), accessList })
    .map(({ c, tip, extra, accessList }) =>
      createFeeMarket1559Tx(
        { ...c, maxPriorityFeePerGas: tip, maxFeePerGas: tip + extra, accessList, chainId: CHAIN },
        opts,
      ).sign(KEY),
    ),
);

test("well-formed signed transactions of the three types are taken, and built as ethereumjs builds them", () => {
  fc.assert(
    fc.property(signed, (tx) => {
      const bytes = tx.serialize();
      assert.ok(agree(bytes), `not taken directly: ${bytesToHex(bytes)}`);
    }),
    { numRuns: 300 },
  );
});

/** The RLP fields of a transaction (typed: after the type byte), and how to put them back. */
function fieldsOf(bytes: Uint8Array): { type: number | undefined; fields: unknown[] } {
  const type = bytes[0]! < 0xc0 ? bytes[0] : undefined;
  return { type, fields: RLP.decode(type === undefined ? bytes : bytes.subarray(1)) as unknown[] };
}
function encode(type: number | undefined, fields: unknown[]): Uint8Array {
  const body = RLP.encode(fields as never);
  return type === undefined ? body : Uint8Array.from([type, ...body]);
}

/** Ways to break a field: leading zeroes, too long, a list, empty, another value. */
const fieldMutation = fc.oneof(
  fc.constant((v: unknown) => (v instanceof Uint8Array ? Uint8Array.from([0, ...v]) : v)),
  fc.constant(() => new Uint8Array(0)),
  fc.constant(() => Uint8Array.of(0)),
  fc.constant(() => []),
  fc.constant((v: unknown) => [v]),
  fc.constant(() => new Uint8Array(33).fill(0xff)),
  fc.constant(() => new Uint8Array(9).fill(0xff)),
  fc.constant(() => new Uint8Array(8).fill(0xff)),
  fc.constant(() => Uint8Array.of(1)),
  fc.constant(() => Uint8Array.of(27)),
  fc.constant(() => Uint8Array.of(0x81, 0x80)),
  fc.constant(() => new Uint8Array(19).fill(1)),
  fc.constant(() => new Uint8Array(32).fill(1)),
  fc.constant(() => [[new Uint8Array(20).fill(1), new Uint8Array(0)]]),
  fc.constant(() => [[new Uint8Array(20).fill(1), [new Uint8Array(31)]]]),
  fc.constant(() => [[new Uint8Array(20).fill(1)]]),
  fc.constant(() => [[Array.from({ length: 20 }, () => new Uint8Array(0)), []]]),
  fc.constant(() => Uint8Array.of(0xc0, 0xc0)),
  fc
    .bigInt({ min: 0n, max: 200_000n })
    .map(
      (n) => () =>
        n === 0n
          ? new Uint8Array(0)
          : Uint8Array.from(
              Buffer.from(n.toString(16).padStart(2 * Math.ceil(n.toString(16).length / 2), "0"), "hex"),
            ),
    ),
);

/** Byte-level damage: flips, truncation, extra bytes, a bad length prefix, another type byte. */
const byteMutation = fc.oneof(
  fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }).map(({ at, xor }) => (b: Uint8Array) => {
    const out = Uint8Array.from(b);
    out[at % out.length]! ^= xor;
    return out;
  }),
  fc.nat().map((at) => (b: Uint8Array) => b.subarray(0, at % b.length)),
  fc
    .uint8Array({ minLength: 1, maxLength: 3 })
    .map((extra) => (b: Uint8Array) => Uint8Array.from([...b, ...extra])),
  fc
    .integer({ min: 0, max: 6 })
    .map((t) => (b: Uint8Array) => Uint8Array.from([t, ...(b[0]! < 0xc0 ? b.subarray(1) : b)])),
  fc.constant((b: Uint8Array) => (b[0]! < 0xc0 ? b.subarray(1) : Uint8Array.from([2, ...b]))),
);

test("malformed transactions: nothing ethereumjs refuses is taken, and what is taken is built the same", () => {
  const before = taken;
  fc.assert(
    fc.property(
      signed,
      fc.array(fc.tuple(fc.nat(), fieldMutation), { minLength: 1, maxLength: 2 }),
      fc.boolean(),
      (tx, edits, drop) => {
        const { type, fields } = fieldsOf(tx.serialize());
        for (const [at, edit] of edits) fields[at % fields.length] = edit(fields[at % fields.length]);
        if (drop) fields.splice(edits[0]![0] % fields.length, 1);
        agree(encode(type, fields));
      },
    ),
    { numRuns: 1500 },
  );
  fc.assert(
    fc.property(signed, byteMutation, (tx, damage) => {
      agree(damage(tx.serialize()));
    }),
    { numRuns: 1500 },
  );
  // Some damaged ones are still valid transactions (e.g. another nonce): those were compared.
  assert.ok(taken > before, "no malformed-but-valid variant was ever taken directly");
});

/** A field's RLP in a form that is not canonical (or `undefined` when the style does not apply). */
function nonCanonical(field: unknown, style: number): Uint8Array | undefined {
  const canonical = RLP.encode(field as never);
  const isList = canonical[0]! >= 0xc0;
  const payload = canonical.subarray(
    canonical[0]! < 0x80
      ? 0
      : canonical[0]! <= 0xb7 || (isList && canonical[0]! <= 0xf7)
        ? 1
        : 1 + (canonical[0]! - (isList ? 0xf7 : 0xb7)),
  );
  if (style === 0)
    return canonical.length === 1 && canonical[0]! < 0x80 ? Uint8Array.of(0x81, canonical[0]!) : undefined;
  // The long form for a payload of at most 55 bytes.
  if (style === 1 && payload.length <= 55)
    return Uint8Array.from([isList ? 0xf8 : 0xb8, payload.length, ...payload]);
  // A length with a leading zero byte.
  if (style === 2) return Uint8Array.from([isList ? 0xf9 : 0xb9, 0, payload.length, ...payload]);
  return undefined;
}

test("fields in non-canonical RLP are never taken", () => {
  let built = 0;
  fc.assert(
    fc.property(signed, fc.nat(), fc.integer({ min: 0, max: 2 }), (tx, at, style) => {
      const { type, fields } = fieldsOf(tx.serialize());
      const k = at % fields.length;
      const odd = nonCanonical(fields[k], style);
      if (!odd) return;
      const parts = fields.map((f, i) => (i === k ? odd : RLP.encode(f as never)));
      const payload = Uint8Array.from(parts.flatMap((p) => [...p]));
      const list = listOf(payload);
      const bytes = type === undefined ? list : Uint8Array.from([type, ...list]);
      assert.equal(typeof reference(bytes), "string", "ethereumjs takes non-canonical RLP");
      assert.equal(decodeSignedTx(bytes, opts), undefined, bytesToHex(bytes));
      built++;
    }),
    { numRuns: 600 },
  );
  assert.ok(built > 100);
});

/** A canonical list header around `payload`. */
function listOf(payload: Uint8Array): Uint8Array {
  if (payload.length <= 55) return Uint8Array.from([0xc0 + payload.length, ...payload]);
  const len = Buffer.from(payload.length.toString(16).padStart(payload.length > 0xff ? 4 : 2, "0"), "hex");
  return Uint8Array.from([0xf7 + len.length, ...len, ...payload]);
}

test("the cases ethereumjs treats specially: high s, pre-EIP-155 v, another chain, non-canonical RLP", () => {
  const legacy = createLegacyTx(
    { nonce: 1n, gasPrice: 1n, gasLimit: 50_000n, to: new Uint8Array(20).fill(2) },
    opts,
  ).sign(KEY);
  const fee = createFeeMarket1559Tx(
    { nonce: 1n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, gasLimit: 50_000n, chainId: CHAIN },
    opts,
  ).sign(KEY);
  const variants: Array<[string, Uint8Array]> = [];
  for (const tx of [legacy, fee]) {
    const { type, fields } = fieldsOf(tx.serialize());
    const n = fields.length;
    const s = BigInt(bytesToHex(fields[n - 1] as Uint8Array));
    const highS = SECP256K1_ORDER - s;
    const toBytes = (v: bigint) => Uint8Array.from(Buffer.from(v.toString(16).padStart(64, "0"), "hex"));
    const flipped = [...fields];
    flipped[n - 1] = toBytes(highS);
    const v = fields[n - 3] as Uint8Array;
    flipped[n - 3] =
      type === undefined
        ? Uint8Array.of(v[v.length - 1]! ^ 1)
        : v.length === 0
          ? Uint8Array.of(1)
          : new Uint8Array(0);
    variants.push([`high s (type ${type ?? 0})`, encode(type, flipped)]);
    if (type === undefined) {
      for (const pre of [27, 28, 37, 38]) {
        const old = [...fields];
        old[6] = Uint8Array.of(pre);
        variants.push([`legacy v ${pre}`, encode(type, old)]);
      }
    } else {
      const other = [...fields];
      other[0] = Uint8Array.of(1);
      variants.push(["another chain", encode(type, other)]);
      const padded = [...fields];
      padded[0] = Uint8Array.from([0, ...(fields[0] as Uint8Array)]);
      variants.push(["a chain id with a leading zero", encode(type, padded)]);
      const unsigned = fields.slice(0, n - 3);
      variants.push(["unsigned", encode(type, unsigned)]);
      for (const parity of [2, 27, 37]) {
        const odd = [...fields];
        odd[n - 3] = Uint8Array.of(parity);
        variants.push([`y-parity ${parity}`, encode(type, odd)]);
      }
    }
    // The same list with a long-form header for a short payload (not canonical).
    const body = type === undefined ? tx.serialize() : tx.serialize().subarray(1);
    const headerLength = body[0]! > 0xf7 ? body[0]! - 0xf7 : 0;
    const inner = body.subarray(1 + headerLength);
    const longer = Uint8Array.from([0xf9, inner.length >> 8, inner.length & 0xff, ...inner]);
    variants.push([
      "a length with a leading zero",
      type === undefined ? longer : Uint8Array.from([type, ...longer]),
    ]);
  }
  variants.push(["a byte after the list", Uint8Array.from([...legacy.serialize(), 0x80])]);
  for (const [name, bytes] of variants) {
    const ref = reference(bytes);
    const direct = decodeSignedTx(bytes, opts);
    if (direct !== undefined) {
      assert.notEqual(typeof ref, "string", `${name}: taken, but ethereumjs refuses it (${ref})`);
      assert.deepEqual(observe(direct), observe(ref as TypedTransaction), name);
    }
  }
  // A legacy transaction with a high s decodes in ethereumjs and fails only at the sender: left to it.
  assert.equal(decodeSignedTx(variants[0]![1], opts), undefined);
});
