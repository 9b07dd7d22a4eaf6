import assert from "node:assert/strict";
import { constants, createHash, generateKeyPairSync, privateDecrypt, publicEncrypt } from "node:crypto";
import { before, describe, test } from "node:test";
import fc from "fast-check";
import {
  checkIssuedRecoveryShares,
  decryptShare,
  type IssuedRecoveryShares,
  issueRecoveryShares,
  RecoveryError,
  type RecoveryErrorCode,
  type RecoveryMember,
  RecoveryShareCollector,
  SHARE_LENGTH,
} from "../../src/recovery/index.ts";
import { seededRandom, subsets } from "./share-fixtures.ts";

interface Holder extends RecoveryMember {
  privateKeyPem: string;
}

function rsaHolder(index: number, modulusLength = 2048): Holder {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const id = createHash("sha256").update(`member ${index}`).digest("hex");
  return { id, encryptionPublicKeyPem: publicKey, privateKeyPem: privateKey };
}

function refusedWith(code: RecoveryErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof RecoveryError, `expected RecoveryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

const LEDGER_SECRET = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
let holders: Holder[];

before(() => {
  holders = Array.from({ length: 7 }, (_, i) => rsaHolder(i));
});

async function issue(k: number, n: number, seed: number | string = `${k}/${n}`) {
  const members = holders.slice(0, n);
  const issued = await issueRecoveryShares({
    ledgerSecret: LEDGER_SECRET,
    members,
    threshold: k,
    randomBytes: seededRandom(seed),
  });
  const decrypted = new Map(members.map((m) => [m.id, decryptShare(issued.shares[m.id]!, m.privateKeyPem)]));
  return { issued, members, decrypted };
}

describe("issueRecoveryShares", () => {
  test("one encrypted share and one commitment per member; plain JSON", async () => {
    const { issued, members } = await issue(3, 5);
    assert.equal(issued.threshold, 3);
    assert.deepEqual(Object.keys(issued.shares).sort(), members.map((m) => m.id).sort());
    assert.deepEqual(Object.keys(issued.commitments).sort(), members.map((m) => m.id).sort());
    for (const c of Object.values(issued.commitments)) assert.match(c, /^[0-9a-f]{64}$/);
    // 2048-bit RSA: each encrypted share is 256 bytes.
    for (const s of Object.values(issued.shares)) assert.equal(Buffer.from(s, "base64").length, 256);
    // 12-byte IV + 32-byte secret + 16-byte tag.
    assert.equal(Buffer.from(issued.encryptedLedgerSecret, "base64").length, 60);
    assert.deepEqual(JSON.parse(JSON.stringify(issued)), issued);
    assert.deepEqual(checkIssuedRecoveryShares(JSON.parse(JSON.stringify(issued))), issued);
  });

  test("the ledger secret appears nowhere in what is issued", async () => {
    const { issued } = await issue(1, 1);
    const all = JSON.stringify(issued);
    assert.ok(!all.includes(Buffer.from(LEDGER_SECRET).toString("base64")));
    assert.ok(!all.includes(Buffer.from(LEDGER_SECRET).toString("hex")));
  });

  test("deterministic given the random source and member set (order of members does not matter)", async () => {
    const members = holders.slice(0, 4);
    const make = (list: RecoveryMember[], seed: string) =>
      issueRecoveryShares({
        ledgerSecret: LEDGER_SECRET,
        members: list,
        threshold: 2,
        randomBytes: seededRandom(seed),
      });
    const a = await make(members, "s");
    assert.deepEqual(await make([...members].reverse(), "s"), a);
    assert.notDeepEqual(await make(members, "t"), a);
  });

  test("input checks", async () => {
    const base: Parameters<typeof issueRecoveryShares>[0] = {
      ledgerSecret: LEDGER_SECRET,
      members: holders.slice(0, 3),
      threshold: 2,
      randomBytes: seededRandom(0),
    };
    const bad: [string, Partial<typeof base> & Record<string, unknown>, RegExp][] = [
      ["threshold 0", { threshold: 0 }, /threshold/],
      ["threshold above n", { threshold: 4 }, /threshold/],
      ["fractional threshold", { threshold: 1.5 }, /threshold/],
      ["no members", { members: [] }, /recovery members/],
      ["duplicate member", { members: [holders[0]!, holders[0]!, holders[1]!] }, /twice/],
      ["member id not hex", { members: [holders[0]!, { ...holders[1]!, id: "alice" }] }, /member id/],
      ["member without a key", { members: [holders[0]!, { id: holders[1]!.id } as RecoveryMember] }, /PEM/],
      [
        "EC key instead of RSA",
        {
          members: [
            holders[0]!,
            {
              id: holders[1]!.id,
              encryptionPublicKeyPem: generateKeyPairSync("ec", { namedCurve: "P-256" })
                .publicKey.export({ type: "spki", format: "pem" })
                .toString(),
            },
          ],
        },
        /RSA/,
      ],
      [
        "1024-bit RSA",
        {
          members: [
            holders[0]!,
            {
              id: holders[1]!.id,
              encryptionPublicKeyPem: generateKeyPairSync("rsa", { modulusLength: 1024 })
                .publicKey.export({ type: "spki", format: "pem" })
                .toString(),
            },
          ],
        },
        /2048/,
      ],
      ["empty ledger secret", { ledgerSecret: new Uint8Array(0) }, /ledgerSecret/],
      ["short random", { randomBytes: () => new Uint8Array(3) }, /randomBytes/],
    ];
    for (const [name, change, pattern] of bad) {
      await assert.rejects(
        issueRecoveryShares({ ...base, ...change } as Parameters<typeof issueRecoveryShares>[0]),
        refusedWith("InvalidInput", pattern),
        name,
      );
    }
    const many = Array.from({ length: 256 }, (_, i) => ({
      ...holders[0]!,
      id: i.toString(16).padStart(64, "0"),
    }));
    await assert.rejects(issueRecoveryShares({ ...base, members: many }), refusedWith("InvalidInput", /255/));
  });
});

describe("RSA-OAEP-SHA-256", () => {
  test("round trip with 2048- and 3072-bit keys; OpenSSL's own OAEP opens what Coco encrypts", async () => {
    for (const bits of [2048, 3072]) {
      const holder = rsaHolder(100 + bits, bits);
      const issued = await issueRecoveryShares({
        ledgerSecret: LEDGER_SECRET,
        members: [holder],
        threshold: 1,
        randomBytes: seededRandom(bits),
      });
      const ciphertext = Buffer.from(issued.shares[holder.id]!, "base64");
      assert.equal(ciphertext.length, bits / 8);
      const viaOpenSsl = privateDecrypt(
        { key: holder.privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        ciphertext,
      );
      const share = decryptShare(issued.shares[holder.id]!, holder.privateKeyPem);
      assert.deepEqual(new Uint8Array(viaOpenSsl), share);
      assert.equal(share.length, SHARE_LENGTH);
      const collector = new RecoveryShareCollector(issued);
      collector.submit(holder.id, share);
      assert.deepEqual(await collector.recover(), LEDGER_SECRET);
    }
  });

  test("decryptShare opens a share encrypted by OpenSSL's OAEP (standard, as CCF's tools make)", () => {
    const holder = holders[0]!;
    const share = Uint8Array.from({ length: SHARE_LENGTH }, (_, i) => i + 1);
    const ciphertext = publicEncrypt(
      { key: holder.encryptionPublicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      share,
    );
    assert.deepEqual(decryptShare(ciphertext.toString("base64"), holder.privateKeyPem), share);
  });

  test("another member's key, altered ciphertext and bad base64 are refused", async () => {
    const { issued, members } = await issue(2, 3);
    const [a, b] = members as [Holder, Holder];
    assert.throws(() => decryptShare(issued.shares[a.id]!, b.privateKeyPem), refusedWith("DecryptFailed"));
    const altered = Buffer.from(issued.shares[a.id]!, "base64");
    altered[10] = (altered[10] ?? 0) ^ 1;
    assert.throws(
      () => decryptShare(altered.toString("base64"), a.privateKeyPem),
      refusedWith("DecryptFailed"),
    );
    assert.throws(() => decryptShare("not base64!", a.privateKeyPem), refusedWith("InvalidInput", /base64/));
    assert.throws(() => decryptShare(issued.shares[a.id]!, "not a key"), refusedWith("InvalidInput", /PEM/));
  });
});

describe("RecoveryShareCollector", () => {
  for (const [k, n] of [
    [1, 1],
    [1, 3],
    [2, 3],
    [3, 5],
    [4, 4],
  ] as const) {
    test(`${k}-of-${n}: every ${k}-subset of members recovers the ledger secret`, async () => {
      const { issued, members, decrypted } = await issue(k, n);
      for (const subset of subsets(members, k)) {
        const collector = new RecoveryShareCollector(issued);
        subset.forEach((m, i) => {
          const progress = collector.submit(m.id, decrypted.get(m.id)!);
          assert.deepEqual(progress, {
            submitted: i + 1,
            threshold: k,
            remaining: k - i - 1,
            duplicate: false,
          });
        });
        assert.deepEqual(await collector.recover(), LEDGER_SECRET);
      }
    });
  }

  test("fewer than k shares: NotEnoughShares, saying how many more", async () => {
    const { issued, members, decrypted } = await issue(3, 5);
    const collector = new RecoveryShareCollector(issued);
    await assert.rejects(collector.recover(), refusedWith("NotEnoughShares", /0 of 3.*3 more/));
    for (const m of members.slice(0, 2)) collector.submit(m.id, decrypted.get(m.id)!);
    assert.equal(collector.remaining, 1);
    await assert.rejects(collector.recover(), refusedWith("NotEnoughShares", /2 of 3.*1 more/));
  });

  test("a wrong share is refused at submission, naming the member", async () => {
    const { issued, members, decrypted } = await issue(2, 3);
    const [a, b] = members as [Holder, Holder];
    const collector = new RecoveryShareCollector(issued);
    // Another member's (valid) share, under this member's name.
    assert.throws(
      () => collector.submit(a.id, decrypted.get(b.id)!),
      refusedWith("ShareMismatch", new RegExp(a.id)),
    );
    // One flipped bit.
    const corrupted = Uint8Array.from(decrypted.get(a.id)!);
    corrupted[5] = (corrupted[5] ?? 0) ^ 0x10;
    assert.throws(() => collector.submit(a.id, corrupted), refusedWith("ShareMismatch"));
    // Wrong length, as bytes and as base64.
    assert.throws(
      () => collector.submit(a.id, corrupted.subarray(1)),
      refusedWith("InvalidShare", /33 bytes/),
    );
    assert.throws(() => collector.submit(a.id, "AAAA"), refusedWith("InvalidShare"));
    assert.throws(() => collector.submit(a.id, "@@@@"), refusedWith("InvalidInput", /base64/));
    assert.equal(collector.submitted, 0, "nothing refused was kept");
  });

  test("a share from someone who holds none: NotARecoveryMember", async () => {
    const { issued, decrypted, members } = await issue(2, 3);
    const collector = new RecoveryShareCollector(issued);
    assert.throws(
      () => collector.submit(holders[6]!.id, decrypted.get(members[0]!.id)!),
      refusedWith("NotARecoveryMember"),
    );
    assert.throws(
      () => collector.submit("__proto__", new Uint8Array(SHARE_LENGTH)),
      refusedWith("NotARecoveryMember"),
    );
  });

  test("submitting the same share again is accepted once (a retry), as bytes or base64", async () => {
    const { issued, members, decrypted } = await issue(2, 3);
    const [a, b] = members as [Holder, Holder];
    const collector = new RecoveryShareCollector(issued);
    collector.submit(a.id, decrypted.get(a.id)!);
    const again = collector.submit(a.id, Buffer.from(decrypted.get(a.id)!).toString("base64"));
    assert.deepEqual(again, { submitted: 1, threshold: 2, remaining: 1, duplicate: true });
    collector.submit(b.id, decrypted.get(b.id)!);
    assert.deepEqual(collector.submittedMembers(), [a.id, b.id].sort());
    assert.deepEqual(await collector.recover(), LEDGER_SECRET);
  });

  test("a tampered wrapped ledger secret fails recovery without revealing anything", async () => {
    const { issued, members, decrypted } = await issue(2, 3);
    const wrapped = Buffer.from(issued.encryptedLedgerSecret, "base64");
    for (const at of [0, 20, wrapped.length - 1]) {
      const copy = Buffer.from(wrapped);
      copy[at] = (copy[at] ?? 0) ^ 1;
      const collector = new RecoveryShareCollector({
        ...issued,
        encryptedLedgerSecret: copy.toString("base64"),
      });
      for (const m of members.slice(0, 2)) collector.submit(m.id, decrypted.get(m.id)!);
      await assert.rejects(collector.recover(), (err: unknown) => {
        refusedWith("RecoveryFailed", /do not reconstruct/)(err);
        const message = (err as Error).message;
        assert.ok(!message.includes(Buffer.from(LEDGER_SECRET).toString("hex")));
        assert.ok(!message.includes(Buffer.from(LEDGER_SECRET).toString("base64")));
        return true;
      });
    }
  });

  test("shares issued for one secret cannot open another issuance", async () => {
    const first = await issue(2, 3, "one");
    const second = await issue(2, 3, "two");
    const collector = new RecoveryShareCollector(second.issued);
    // Commitments bind each share to its issuance: the old shares are refused one by one.
    assert.throws(
      () => collector.submit(first.members[0]!.id, first.decrypted.get(first.members[0]!.id)!),
      refusedWith("ShareMismatch"),
    );
  });

  test("clear() forgets every share", async () => {
    const { issued, members, decrypted } = await issue(1, 2);
    const collector = new RecoveryShareCollector(issued);
    collector.submit(members[0]!.id, decrypted.get(members[0]!.id)!);
    collector.clear();
    assert.equal(collector.submitted, 0);
    await assert.rejects(collector.recover(), refusedWith("NotEnoughShares"));
  });

  test("malformed issued records are refused when the collector is made", async () => {
    const { issued } = await issue(2, 3);
    const [first] = Object.keys(issued.shares) as [string];
    const bad: [string, unknown][] = [
      ["not an object", "x"],
      ["threshold too high", { ...issued, threshold: 4 }],
      ["threshold missing", { ...issued, threshold: undefined }],
      ["shares not an object", { ...issued, shares: [] }],
      ["share not base64", { ...issued, shares: { ...issued.shares, [first]: "!!" } }],
      ["commitment not hex", { ...issued, commitments: { ...issued.commitments, [first]: "zz" } }],
      ["a commitment missing", { ...issued, commitments: { ...issued.commitments, [first]: undefined } }],
      ["member id not hex", { ...issued, shares: { ...issued.shares, alice: issued.shares[first] } }],
      ["wrapped secret too short", { ...issued, encryptedLedgerSecret: "AAAA" }],
    ];
    for (const [name, record] of bad) {
      assert.throws(() => new RecoveryShareCollector(record), refusedWith("InvalidInput"), name);
    }
  });

  test("property: random secrets, k-of-n and any k submitted shares recover the secret", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc
          .integer({ min: 1, max: 5 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.integer({ min: 1, max: n }),
              fc.shuffledSubarray(holders.slice(0, n)),
            ),
          ),
        fc.integer(),
        async (secret, [n, k, order], seed) => {
          const members = holders.slice(0, n);
          const issued: IssuedRecoveryShares = await issueRecoveryShares({
            ledgerSecret: secret,
            members,
            threshold: k,
            randomBytes: seededRandom(seed),
          });
          const chosen = [...order, ...members.filter((m) => !order.includes(m))].slice(0, k);
          const collector = new RecoveryShareCollector(JSON.parse(JSON.stringify(issued)));
          for (const m of chosen) collector.submit(m.id, decryptShare(issued.shares[m.id]!, m.privateKeyPem));
          assert.deepEqual(await collector.recover(), secret);
        },
      ),
      { numRuns: 40 },
    );
  });
});
