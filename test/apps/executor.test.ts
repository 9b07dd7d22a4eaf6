import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defineApp, type Executor, ExecutorRegistry } from "../../src/apps/index.ts";
import { Store } from "../../src/kv/index.ts";

const ok = () => ({ body: "ok" });
const native = defineApp("native", (app) => {
  app.get("/log", { auth: ["no_auth"], mode: "readonly" }, ok);
  app.post("/log", { auth: ["no_auth"], mode: "readwrite" }, ok);
});
const bundle = defineApp("bundle", (app) => {
  app.get("/log", { auth: ["user_cert"], mode: "readonly" }, ok);
  app.get("/other", { auth: ["no_auth"], mode: "readonly" }, ok);
});
const store = new Store();

describe("ExecutorRegistry", () => {
  it("asks executors in order: the first that knows the path answers", () => {
    const registry = new ExecutorRegistry([native, bundle]);
    const found = registry.match("GET", "/log", store);
    assert.ok(found && "endpoint" in found);
    assert.deepEqual(found.endpoint.auth, ["no_auth"]);
    const other = registry.match("GET", "/other", store);
    assert.ok(other && "endpoint" in other);
    assert.equal(registry.match("GET", "/none", store), undefined);
  });

  it("lets an executor registered with replaces stand in for an earlier one", () => {
    const registry = new ExecutorRegistry([native]).add(bundle, { replaces: true });
    const found = registry.match("GET", "/log", store);
    assert.ok(found && "endpoint" in found);
    assert.deepEqual(found.endpoint.auth, ["user_cert"]);
    assert.deepEqual(registry.names(), ["bundle", "native"]);
  });

  it("says method not allowed only when no executor has the method for the path", () => {
    const registry = new ExecutorRegistry([bundle, native]);
    // bundle has only GET /log; native has POST /log: the POST is served, not refused.
    const post = registry.match("POST", "/log", store);
    assert.ok(post && "endpoint" in post);
    assert.deepEqual(registry.match("DELETE", "/log", store), { methodNotAllowed: true });
  });

  it("refuses two executors of one name", () => {
    assert.throws(() => new ExecutorRegistry([native, native]), /already registered/);
  });

  it("closes every executor that holds resources", async () => {
    const closed: string[] = [];
    const holder: Executor = {
      name: "holder",
      match: () => undefined,
      close: async () => void closed.push("holder"),
    };
    await new ExecutorRegistry([native, holder]).close();
    assert.deepEqual(closed, ["holder"]);
  });
});
