// The executor for CCF-style JS bundles: routes `/app` requests to the endpoints governance
// installed in `public:ccf.gov.endpoints`, and runs them in warm QuickJS contexts.
import type { Logger } from "pino";
import type { Endpoint, Executor, ExecutorMatch, HttpMethod } from "../apps/index.ts";
import { Router } from "../apps/index.ts";
import { createJsEngine, type JsEngine, type JsEnv, type JsModuleSet } from "../js/index.ts";
import type { Store, Tx } from "../kv/index.ts";
import { appModuleSet } from "./adapter.ts";
import { type JsEndpointInfo, moduleName } from "./bundle.ts";
import { type HandlerDeps, type InstalledEndpoint, runJsEndpoint } from "./handler.ts";
import type { JsAppHost } from "./host.ts";
import { openApiDocument } from "./openapi.ts";
import { JsAppTables, SINGLETON_KEY } from "./tables.ts";

export interface JsAppExecutorOptions {
  env: JsEnv;
  log: Logger;
  /** The node facts behind ccf.consensus and ccf.historical; or attach() it later. */
  host?: JsAppHost;
  /** The executor's name in the registry (default "js"). */
  name?: string;
  /** Warm contexts kept (default 16). */
  maxCachedContexts?: number;
}

interface InstalledApp {
  /** Version of the last write to interpreter.flush: every install writes it, removal clears it. */
  version: number | undefined;
  router: Router;
  modules: JsModuleSet | undefined;
  endpoints: InstalledEndpoint[];
}

const decoder = new TextDecoder();
const METHODS = new Set<string>(["GET", "PUT", "POST", "DELETE", "PATCH"]);

function allEntries(tx: Tx, map: string): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  let after: string | undefined;
  do {
    const page = tx.map(map).range({ limit: 10_000, ...(after === undefined ? {} : { after }) });
    for (const [k, v] of page.entries) out.push([decoder.decode(k), v]);
    after = page.next;
  } while (after !== undefined);
  return out;
}

export class JsAppExecutor implements Executor {
  readonly name: string;
  private host: JsAppHost | undefined;
  private app: InstalledApp | undefined;
  private readonly deps: HandlerDeps;

  constructor(
    readonly engine: JsEngine,
    private readonly options: JsAppExecutorOptions,
  ) {
    this.name = options.name ?? "js";
    this.host = options.host;
    this.deps = { engine, log: options.log, host: () => this.host };
  }

  /** Gives the executor the node it serves (for ccf.consensus and ccf.historical). */
  attach(host: JsAppHost): void {
    this.host = host;
  }

  match(method: HttpMethod, path: string, store: Store): ExecutorMatch {
    return this.installed(store).router.match(method, path);
  }

  /** The endpoints installed in `store` (for tools and tests). */
  endpoints(store: Store): InstalledEndpoint[] {
    return this.installed(store).endpoints;
  }

  async close(): Promise<void> {
    this.engine.dispose();
  }

  private installed(store: Store): InstalledApp {
    const tx = store.begin();
    try {
      const version = tx.map(JsAppTables.interpreterFlush).getVersionOfPreviousWrite(SINGLETON_KEY);
      if (this.app !== undefined && this.app.version === version) return this.app;
      const previous = this.app?.modules;
      this.app = this.load(tx, version);
      if (previous !== undefined) this.engine.evict(previous);
      return this.app;
    } finally {
      tx.abandon();
    }
  }

  private load(tx: Tx, version: number | undefined): InstalledApp {
    const endpoints: InstalledEndpoint[] = [];
    for (const [key, value] of allEntries(tx, JsAppTables.endpoints)) {
      const space = key.indexOf(" ");
      const method = key.slice(0, space).toUpperCase();
      const route = key.slice(space + 1);
      if (!METHODS.has(method)) continue;
      try {
        endpoints.push({ method, route, info: JSON.parse(decoder.decode(value)) as JsEndpointInfo });
      } catch {
        this.options.log.error({ key }, "an installed JS endpoint is not JSON; it is not served");
      }
    }
    const sources = new Map(
      allEntries(tx, JsAppTables.modules).map(([k, v]) => [moduleName(k), decoder.decode(v)]),
    );
    const modules =
      sources.size === 0
        ? undefined
        : appModuleSet(
            sources,
            endpoints.map((e) => e.info.js_module),
          );
    const router = new Router();
    for (const endpoint of endpoints) {
      if (modules === undefined) break;
      try {
        router.add({
          method: endpoint.method as HttpMethod,
          path: endpoint.route,
          // Names were checked when the bundle was proposed (bundle.ts).
          auth: endpoint.info.authn_policies as Endpoint["auth"],
          mode: endpoint.info.mode,
          forwarding: endpoint.info.forwarding_required,
          handler: (ctx) => runJsEndpoint(this.deps, modules, endpoint, ctx),
        });
      } catch (e) {
        this.options.log.error(
          { err: e, route: endpoint.route },
          "an installed JS endpoint cannot be routed",
        );
      }
    }
    if (!endpoints.some((e) => e.method === "GET" && e.route === "/api")) {
      const document = openApiDocument(endpoints);
      router.add({
        method: "GET",
        path: "/api",
        auth: ["no_auth"],
        mode: "readonly",
        forwarding: "never",
        handler: () => ({ body: document }),
      });
    }
    return { version, router, modules, endpoints };
  }
}

/** An executor for JS bundles with its own sandbox engine. */
export async function createJsAppExecutor(options: JsAppExecutorOptions): Promise<JsAppExecutor> {
  const engine = await createJsEngine({
    env: options.env,
    maxCachedContexts: options.maxCachedContexts ?? 16,
  });
  return new JsAppExecutor(engine, options);
}
