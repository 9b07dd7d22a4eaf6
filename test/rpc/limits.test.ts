import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { addressKey } from "../../src/rpc/connection-limits.ts";
import { JoinLimiter } from "../../src/rpc/join-limits.ts";

describe("addressKey", () => {
  test("IPv4 as is; IPv4-mapped IPv6 as its IPv4; IPv6 by its /64", () => {
    assert.equal(addressKey("127.0.0.1"), "127.0.0.1");
    assert.equal(addressKey("::ffff:10.1.2.3"), "10.1.2.3");
    assert.equal(addressKey("2001:db8:0:1:aaaa:bbbb:cccc:dddd"), "2001:db8:0:1::/64");
    assert.equal(addressKey("2001:db8:0:1::7"), "2001:db8:0:1::/64");
    assert.equal(addressKey("2001:0db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.equal(addressKey(undefined), "unknown");
  });
});

describe("JoinLimiter", () => {
  const limits = {
    perAddress: { burst: 2, everyMs: 1000 },
    overall: { burst: 3, everyMs: 500 },
    maxPendingPerAddress: 1,
  };
  const none = () => false;

  test("per address: a burst, then one per interval, with the wait in whole seconds", () => {
    let now = 0;
    const limiter = new JoinLimiter(limits, () => now);
    assert.equal(limiter.admit("a", none), undefined);
    assert.equal(limiter.admit("a", none), undefined);
    const refused = limiter.admit("a", none);
    assert.equal(refused?.code, "TooManyJoinRequests");
    assert.equal(refused?.retryAfterSeconds, 1);
    now += 1000;
    assert.equal(limiter.admit("a", none), undefined);
  });

  test("overall, across addresses; a refused request takes no token", () => {
    let now = 0;
    const limiter = new JoinLimiter(limits, () => now);
    assert.equal(limiter.admit("a", none), undefined);
    assert.equal(limiter.admit("b", none), undefined);
    assert.equal(limiter.admit("c", none), undefined);
    const refused = limiter.admit("d", none);
    assert.equal(refused?.code, "TooManyJoinRequests");
    assert.doesNotMatch(refused?.message ?? "", /this address/);
    now += 500;
    assert.equal(limiter.admit("d", none), undefined);
  });

  test("Pending nodes per address: bounded while they stay Pending", () => {
    const limiter = new JoinLimiter(limits, () => 0);
    const pending = new Set(["n1"]);
    assert.equal(
      limiter.admit("a", (id) => pending.has(id)),
      undefined,
    );
    limiter.recordPending("a", "n1");
    assert.equal(limiter.admit("a", (id) => pending.has(id))?.code, "TooManyPendingJoins");
    assert.equal(
      limiter.admit("b", (id) => pending.has(id)),
      undefined,
      "another address is not bound by it",
    );
    pending.delete("n1"); // trusted or removed by the members
    assert.equal(
      limiter.admit("a", (id) => pending.has(id)),
      undefined,
    );
  });
});
