import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { TxHistory, type TxMeta } from "../../src/ledger/tx-history.ts";

const digest = (n: number) => new Uint8Array(32).fill(n & 0xff);
const ZERO = new Uint8Array(32);

test("packed transaction metadata reads back what was pushed, across pages and truncations", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          view: fc.integer({ min: 1, max: 4 }),
          secretVersion: fc.constantFrom(0, 0, 0, 7),
          claims: fc.boolean(),
          isSignature: fc.boolean(),
        }),
        { minLength: 1, maxLength: 60 },
      ),
      fc.nat(60),
      (specs, cut) => {
        const history = new TxHistory();
        const model: TxMeta[] = [];
        // Enough transactions to cross a 4,096-entry page boundary.
        for (let i = 0; i < 4100; i++) {
          const spec = specs[i % specs.length]!;
          const meta = {
            view: spec.view,
            secretVersion: spec.secretVersion,
            writeSetDigest: digest(i),
            claimsDigest: spec.claims ? digest(i + 1) : ZERO,
            isSignature: spec.isSignature,
          };
          history.push(meta);
          model.push(meta);
        }
        const keep = 4100 - cut;
        history.truncate(keep);
        model.length = keep;
        history.push({
          view: 9,
          secretVersion: 9,
          writeSetDigest: digest(3),
          claimsDigest: ZERO,
          isSignature: true,
        });
        model.push({
          view: 9,
          secretVersion: 9,
          writeSetDigest: digest(3),
          claimsDigest: ZERO,
          isSignature: true,
        });
        assert.equal(history.length, model.length);
        for (const i of [0, 1, 4095, 4096, keep - 1, keep, model.length - 1]) {
          if (i < 0 || i >= model.length) continue;
          assert.deepEqual(history.at(i), model[i], `transaction ${i}`);
          assert.equal(history.viewAt(i), model[i]!.view);
        }
        assert.equal(history.at(model.length), undefined);
        assert.equal(history.at(-1), undefined);
      },
    ),
    { numRuns: 30 },
  );
});

test("compaction drops whole pages before the bound; the rest, and every view, read back as before", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.array(fc.integer({ min: 0, max: 220 }), { minLength: 1, maxLength: 4 }),
      (count, bounds) => {
        const history = new TxHistory(8);
        const model: TxMeta[] = [];
        const push = (i: number) => {
          const meta = {
            view: 1 + Math.floor(i / 50),
            secretVersion: 0,
            writeSetDigest: digest(i),
            claimsDigest: i % 3 === 0 ? digest(i + 1) : ZERO,
            isSignature: i % 5 === 0,
          };
          history.push(meta);
          model.push(meta);
        };
        for (let i = 0; i < count; i++) push(i);
        let firstHeld = 0;
        for (const bound of bounds) {
          history.compact(bound);
          // Whole pages of 8 only, never past the bound, never back.
          const expected = Math.max(firstHeld, Math.floor(Math.min(bound, model.length) / 8) * 8);
          assert.equal(history.firstHeld, expected);
          firstHeld = expected;
          push(model.length);
        }
        assert.equal(history.pagesHeld, Math.ceil(model.length / 8) - firstHeld / 8);
        for (let i = 0; i < model.length; i++) {
          assert.deepEqual(history.at(i), i < firstHeld ? undefined : model[i], `transaction ${i}`);
          assert.equal(history.viewAt(i), model[i]!.view);
        }
        assert.throws(() => history.truncate(firstHeld - 1), RangeError);
        history.truncate(firstHeld);
        assert.equal(history.length, firstHeld);
      },
    ),
    { numRuns: 60 },
  );
});
