import assert from "node:assert/strict";
import { test } from "node:test";
import { isPublicMap, KvError, Store, validateMapName } from "../../src/kv/index.ts";

test("public maps are those named public:*", () => {
  assert.equal(isPublicMap("public:ccf.gov.members.certs"), true);
  assert.equal(isPublicMap("public:"), true);
  assert.equal(isPublicMap("ccf.private"), false);
  assert.equal(isPublicMap("Public:x"), false);
  assert.equal(isPublicMap(" public:x"), false);
});

test("map names: non-empty, at most 255 UTF-8 bytes, no control characters, valid Unicode", () => {
  validateMapName("public:ccf.gov.nodes.info");
  validateMapName("a".repeat(255));
  validateMapName("\u00e9".repeat(127)); // 254 bytes
  validateMapName("emoji \u{1f600}");
  const bad: Array<[unknown, RegExp]> = [
    ["", /must not be empty/],
    ["a".repeat(256), /256 UTF-8 bytes/],
    ["\u00e9".repeat(128), /256 UTF-8 bytes/],
    ["tab\there", /control character U\+0009 at index 3/],
    ["nul\u0000", /U\+0000/],
    ["del\u007f", /U\+007f/],
    ["c1\u0085", /U\+0085/],
    ["half \ud800", /lone surrogate/],
    [42, /must be a string/],
  ];
  for (const [name, message] of bad) {
    assert.throws(
      () => validateMapName(name as string),
      (e: unknown) => e instanceof KvError && message.test(e.message),
    );
  }
  assert.throws(() => new Store().begin().map("bad\nname"), KvError);
});
