// The module set an installed app runs as: the bundle's modules plus one small adapter per
// endpoint module. The adapter turns the host's plain request record into CCF's Request object
// (body.text/json/arrayBuffer; json() refuses a body sent with a content type other than JSON, as
// the built-in endpoints do, which the host answers 415), calls the endpoint function and classifies its response body in
// the sandbox, where the difference between a string, bytes and JSON is still visible.
import { createModuleSet, type JsModuleSet } from "../js/index.ts";
import { moduleName, RESERVED_MODULE_PREFIX } from "./bundle.ts";

const ADAPTER_FOLDER = `${RESERVED_MODULE_PREFIX}endpoint>`;

/** The adapter module's name for a bundle module (stack frames under `<coco:` are hidden). */
export function adapterName(module: string): string {
  return `${ADAPTER_FOLDER}/${moduleName(module)}`;
}

function adapterSource(module: string): string {
  return `import * as ns from ${JSON.stringify(`/${moduleName(module)}`)};
function finish(response) {
  if (response === null || typeof response !== "object") {
    throw new TypeError("the endpoint function must return an object {statusCode?, headers?, body?}");
  }
  const out = { statusCode: response.statusCode, headers: {} };
  const headers = response.headers;
  if (headers !== undefined && headers !== null) {
    for (const name of Object.keys(headers)) out.headers[name] = String(headers[name]);
  }
  const body = response.body;
  if (body === undefined) out.kind = "none";
  else if (typeof body === "string") { out.kind = "text"; out.body = body; }
  else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) { out.kind = "bytes"; out.body = body; }
  else { out.kind = "json"; out.body = JSON.stringify(body); }
  return out;
}
export function invoke(fn, request, jsonRefusal) {
  const f = ns[fn];
  if (typeof f !== "function") throw new TypeError("the module does not export a function " + fn);
  const bytes = request.body;
  request.body = {
    text() { return ccf.bufToStr(bytes); },
    json() {
      if (jsonRefusal !== null) {
        const e = new Error(jsonRefusal);
        e.name = "UnsupportedContentType";
        throw e;
      }
      return JSON.parse(ccf.bufToStr(bytes));
    },
    arrayBuffer() { return bytes.slice(0); },
  };
  const result = f(request);
  if (result !== null && typeof result === "object" && typeof result.then === "function") {
    return result.then(finish);
  }
  return finish(result);
}
export function exportedFunctions() {
  return Object.keys(ns).filter((name) => typeof ns[name] === "function");
}
`;
}

/** The bundle's modules (by their stored names) with an adapter for each endpoint module. */
export function appModuleSet(
  modules: ReadonlyMap<string, string>,
  endpointModules: Iterable<string>,
): JsModuleSet {
  const sources: Record<string, string> = {};
  for (const [name, source] of modules) sources[moduleName(name)] = source;
  for (const module of new Set(endpointModules)) sources[adapterName(module)] = adapterSource(module);
  return createModuleSet(sources);
}
