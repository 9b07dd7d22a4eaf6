/** The example from docs/apps.md, kept here so the compiler checks it. */
import { defineApp, HttpError, jsonCodec, stringCodec, TypedMap } from "../../src/apps/index.ts";

interface Account {
  owner: string;
  balance: number;
}

export const bank = defineApp("bank", (app) => {
  app.put("/accounts/{name}", { auth: ["user_cert"], mode: "readwrite", waitForCommit: true }, (ctx) => {
    const accounts = new TypedMap(ctx.tx, "accounts", stringCodec, jsonCodec<Account>());
    const name = ctx.request.params.name!;
    if (accounts.has(name)) throw new HttpError(409, "AccountExists", `${name} already exists`);
    accounts.set(name, { owner: ctx.caller.policy === "user_cert" ? ctx.caller.id : "", balance: 0 });
    return { status: 201, body: { created: name } };
  });
  app.get("/accounts/{name}", { auth: ["user_cert"], mode: "readonly" }, (ctx) => {
    const account = new TypedMap(ctx.tx, "accounts", stringCodec, jsonCodec<Account>()).get(
      ctx.request.params.name!,
    );
    if (!account) throw new HttpError(404, "ResourceNotFound", "no such account");
    return { body: account };
  });
});
