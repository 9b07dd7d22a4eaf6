import fc from "fast-check";

/**
 * Mutation fuzzing: inputs made by damaging valid samples (a corpus) a few times over, the way a
 * flipped bit, a torn write, a hostile peer or a careless editor would: bit flips, byte
 * overwrites with boundary values, inserted and deleted runs, truncation, duplicated and swapped
 * regions. Pure noise is mixed in too. Everything is drawn by fast-check, so a seed replays.
 */
type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; value: number }
  | { op: "u32"; at: number; value: number; bigEndian: boolean }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; length: number }
  | { op: "truncate"; at: number }
  | { op: "duplicate"; at: number; length: number; to: number }
  | { op: "swap"; at: number; length: number; to: number };

/** Values that sit on boundaries parsers get wrong: zero, all ones, sign bits, just over a size. */
const BOUNDARY_U32 = [
  0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
];

const position = fc.nat({ max: 1 << 20 });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({
    op: fc.constant("set" as const),
    at: position,
    value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x20),
  }),
  fc.record({
    op: fc.constant("u32" as const),
    at: position,
    value: fc.oneof(fc.constantFrom(...BOUNDARY_U32), fc.nat()),
    bigEndian: fc.boolean(),
  }),
  fc.record({
    op: fc.constant("insert" as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ op: fc.constant("delete" as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: position }),
  fc.record({
    op: fc.constant("duplicate" as const),
    at: position,
    length: fc.integer({ min: 1, max: 256 }),
    to: position,
  }),
  fc.record({
    op: fc.constant("swap" as const),
    at: position,
    length: fc.integer({ min: 1, max: 64 }),
    to: position,
  }),
);

function apply(input: Uint8Array, m: Mutation): Uint8Array {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % n;
  const out = Buffer.from(input);
  switch (m.op) {
    case "flip":
      if (n > 0) out[at]! ^= 1 << m.bit;
      return out;
    case "set":
      if (n > 0) out[at] = m.value;
      return out;
    case "u32": {
      if (n < 4) return out;
      const where = at % (n - 3);
      if (m.bigEndian) out.writeUInt32BE(m.value >>> 0, where);
      else out.writeUInt32LE(m.value >>> 0, where);
      return out;
    }
    case "insert":
      return Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    case "delete":
      return Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
    case "truncate":
      return out.subarray(0, at);
    case "duplicate": {
      const piece = out.subarray(at, at + m.length);
      const to = n === 0 ? 0 : m.to % (n + 1);
      return Buffer.concat([out.subarray(0, to), piece, out.subarray(to)]);
    }
    case "swap": {
      if (n === 0) return out;
      const len = Math.min(m.length, n - at, n - (m.to % n));
      const to = m.to % n;
      const a = Buffer.from(out.subarray(at, at + len));
      const b = Buffer.from(out.subarray(to, to + len));
      out.set(b, at);
      out.set(a, to);
      return out;
    }
  }
}

export function applyMutations(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = input;
  for (const m of mutations) bytes = apply(bytes, m);
  return new Uint8Array(bytes);
}

/**
 * Damaged copies of the corpus (most inputs), plus noise. `repair` runs after the damage: a
 * parser guarded by a checksum would otherwise refuse nearly everything at the first check, so a
 * target may fix the checksum to reach the structure behind it.
 */
export function mutated(
  corpus: readonly Uint8Array[],
  repair?: (bytes: Uint8Array) => Uint8Array,
): fc.Arbitrary<Uint8Array> {
  const damaged = fc
    .tuple(
      fc.nat({ max: corpus.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 6 }),
      fc.boolean(),
    )
    .map(([index, mutations, fix]) => {
      const bytes = applyMutations(corpus[index]!, mutations);
      return fix && repair ? repair(bytes) : bytes;
    });
  return fc.oneof(
    { weight: 8, arbitrary: damaged },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 1, arbitrary: fc.constantFrom(...corpus) },
  );
}

/** Damaged JSON documents: values replaced, keys dropped, types changed, at any depth. */
export function mutatedJson(corpus: readonly unknown[]): fc.Arbitrary<unknown> {
  const edit = fc.record({
    path: fc.array(fc.nat(), { maxLength: 4 }),
    kind: fc.nat({ max: 3 }),
    value: fc.jsonValue({ maxDepth: 2 }),
  });
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(fc.nat({ max: corpus.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 }))
        .map(([index, edits]) => {
          let doc: unknown = structuredClone(corpus[index]);
          for (const e of edits) doc = editAt(doc, e.path, e.kind, e.value);
          return doc;
        }),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
}

function editAt(doc: unknown, path: number[], kind: number, value: unknown): unknown {
  if (typeof doc !== "object" || doc === null) return value;
  const keys = Array.isArray(doc) ? doc.map((_, i) => String(i)) : Object.keys(doc);
  if (keys.length === 0) return kind === 0 ? value : doc;
  const key = keys[path[0] !== undefined ? path[0] % keys.length : 0]!;
  const record = doc as Record<string, unknown>;
  if (path.length <= 1) {
    if (kind === 1 && !Array.isArray(doc)) delete record[key];
    else if (kind === 2) record[key] = JSON.stringify(record[key] ?? null);
    else record[key] = value;
    return doc;
  }
  record[key] = editAt(record[key], path.slice(1), kind, value);
  return doc;
}
