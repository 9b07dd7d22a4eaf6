// CCF-style JS app bundles: app.json metadata plus ES modules, as a `set_js_app` proposal
// carries them and as governance stores them (`public:ccf.gov.modules`, `public:ccf.gov.endpoints`).

export type JsEndpointMode = "readwrite" | "readonly" | "historical";
export type ForwardingRequired = "never" | "sometimes" | "always";
export type RedirectionStrategy = "none" | "to_primary" | "to_backup";
/** A policy name, or `{all_of: [names]}`: all must pass. */
export type JsAuthnPolicy = string | { all_of: string[] };
/** The policies an endpoint may name, as CCF names them (src/rpc/auth-policies.ts checks them). */
export const KNOWN_POLICIES = new Set([
  "user_cert",
  "member_cert",
  "any_cert",
  "no_auth",
  "jwt",
  "user_cose_sign1",
  "member_cose_sign1",
]);

/** One endpoint of app.json, as CCF defines it. */
export interface JsEndpointInfo {
  js_module: string;
  js_function: string;
  authn_policies: JsAuthnPolicy[];
  mode: JsEndpointMode;
  forwarding_required: ForwardingRequired;
  redirection_strategy?: RedirectionStrategy;
  openapi?: Record<string, unknown>;
  openapi_hidden?: boolean;
  interpreter_reuse?: { key: string };
}

export interface JsBundle {
  metadata: { endpoints: Record<string, Record<string, JsEndpointInfo>> };
  modules: Array<{ name: string; module: string }>;
}

/** A bundle that cannot be installed; the message says where and why. */
export class BundleError extends Error {}

const METHODS = new Set(["get", "put", "post", "delete", "patch"]);
const MODES = ["readwrite", "readonly", "historical"];
const FORWARDING = ["sometimes", "always", "never"];
const REDIRECTION = ["none", "to_primary", "to_backup"];
/** Module names starting with this are Coco's own (endpoint adapters) and refused in bundles. */
export const RESERVED_MODULE_PREFIX = "<coco:";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function need(condition: boolean, message: string): asserts condition {
  if (!condition) throw new BundleError(message);
}

/** A module name as CCF stores it: relative to the bundle's root, without a leading slash. */
export function moduleName(name: string): string {
  return name.replace(/^\/+/, "");
}

function checkEndpoint(info: unknown, where: string, modules: Set<string>): JsEndpointInfo {
  need(isObject(info), `${where} must be an object`);
  need(typeof info.js_module === "string" && info.js_module !== "", `${where}.js_module must be a string`);
  need(
    typeof info.js_function === "string" && /^[A-Za-z_$][\w$]*$/.test(info.js_function),
    `${where}.js_function must be the name of an exported function`,
  );
  need(
    MODES.includes(info.mode as string),
    `${where}.mode must be one of ${MODES.join(", ")}, got ${JSON.stringify(info.mode)}`,
  );
  need(
    FORWARDING.includes(info.forwarding_required as string),
    `${where}.forwarding_required must be one of ${FORWARDING.join(", ")}, got ${JSON.stringify(info.forwarding_required)}`,
  );
  need(
    info.redirection_strategy === undefined || REDIRECTION.includes(info.redirection_strategy as string),
    `${where}.redirection_strategy must be one of ${REDIRECTION.join(", ")}`,
  );
  need(info.openapi === undefined || isObject(info.openapi), `${where}.openapi must be an object`);
  need(
    info.openapi_hidden === undefined || typeof info.openapi_hidden === "boolean",
    `${where}.openapi_hidden must be a boolean`,
  );
  need(Array.isArray(info.authn_policies), `${where}.authn_policies must be an array`);
  for (const [i, policy] of (info.authn_policies as unknown[]).entries()) {
    const names = typeof policy === "string" ? [policy] : isObject(policy) ? policy.all_of : undefined;
    need(
      Array.isArray(names) && names.length > 0 && names.every((p) => typeof p === "string"),
      `${where}.authn_policies[${i}] must be a policy name or {"all_of": [names]}`,
    );
    for (const name of names as string[]) {
      need(
        KNOWN_POLICIES.has(name),
        `${where}.authn_policies[${i}]: unknown policy '${name}' (known: ${[...KNOWN_POLICIES].join(", ")})`,
      );
    }
  }
  const reuse = info.interpreter_reuse;
  need(
    reuse === undefined || (isObject(reuse) && typeof reuse.key === "string" && reuse.key !== ""),
    `${where}.interpreter_reuse must be {"key": "<name>"}`,
  );
  need(
    modules.has(moduleName(info.js_module)),
    `${where}.js_module: module '${info.js_module}' not found in bundle`,
  );
  return info as unknown as JsEndpointInfo;
}

/**
 * Checks a bundle's shape (what CCF's `set_js_app` validation checks, and a little more: path
 * templates, function names, duplicate modules). It does not run the code: `checkBundleCode` does.
 */
export function parseBundle(bundle: unknown): JsBundle {
  need(isObject(bundle), "bundle must be an object {metadata, modules}");
  need(
    Array.isArray(bundle.modules) && bundle.modules.length > 0,
    "bundle.modules must be a non-empty array",
  );
  const names = new Set<string>();
  for (const [i, m] of (bundle.modules as unknown[]).entries()) {
    need(isObject(m), `bundle.modules[${i}] must be an object {name, module}`);
    need(typeof m.name === "string" && m.name !== "", `bundle.modules[${i}].name must be a string`);
    need(typeof m.module === "string", `bundle.modules[${i}].module must be a string`);
    const name = moduleName(m.name);
    need(!name.startsWith(RESERVED_MODULE_PREFIX), `bundle.modules[${i}].name: '${m.name}' is reserved`);
    need(!names.has(name), `bundle.modules[${i}].name: '${m.name}' appears twice`);
    names.add(name);
  }
  need(isObject(bundle.metadata), "bundle.metadata must be an object (the app.json)");
  const endpoints = bundle.metadata.endpoints;
  need(isObject(endpoints), "bundle.metadata.endpoints must be an object");
  for (const [path, methods] of Object.entries(endpoints)) {
    const where = `bundle.metadata.endpoints["${path}"]`;
    need(path.startsWith("/"), `${where}: a path must start with '/'`);
    need(
      path
        .slice(1)
        .split("/")
        .every((part) => /^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(part) || !/[{}?#]/.test(part)),
      `${where}: path segments are literals or {name} parameters`,
    );
    need(isObject(methods), `${where} must be an object of methods`);
    for (const [method, info] of Object.entries(methods)) {
      need(METHODS.has(method.toLowerCase()), `${where}: unsupported method '${method}'`);
      checkEndpoint(info, `${where}["${method}"]`, names);
    }
  }
  return bundle as unknown as JsBundle;
}
