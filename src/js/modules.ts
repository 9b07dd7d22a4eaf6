// Module sets: canonical names, a content digest for the warm-context cache, import resolution.
import { createHash } from "node:crypto";
import { JsConfigError, JsError } from "./errors.ts";

const MODULE_SET = Symbol("coco.js.moduleSet");

/** An immutable, validated set of ES modules, identified by the digest of its content. */
export interface JsModuleSet {
  readonly [MODULE_SET]: true;
  /** Hex SHA-256 over the canonical names and sources. */
  readonly digest: string;
  /** Canonical module name -> source. */
  readonly sources: ReadonlyMap<string, string>;
}

/**
 * A module name as stored: "/a/b.js", "./a/b.js" and "a/b.js" all mean "a/b.js".
 * Returns undefined when the name is empty or climbs above the root.
 */
export function canonicalModuleName(name: string): string | undefined {
  const out: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.length === 0 ? undefined : out.join("/");
}

/**
 * Resolves `requested` as imported from the module `base`: "./x" and "../x" are relative to
 * base's folder, "/x" and bare names are looked up from the root of the set.
 */
export function resolveImport(base: string, requested: string): string | undefined {
  if (requested.startsWith("./") || requested.startsWith("../")) {
    const slash = base.lastIndexOf("/");
    const folder = slash < 0 ? "" : base.slice(0, slash + 1);
    return canonicalModuleName(folder + requested);
  }
  return canonicalModuleName(requested);
}

export function isModuleSet(value: unknown): value is JsModuleSet {
  return typeof value === "object" && value !== null && MODULE_SET in value;
}

/**
 * Validates and freezes a module set. Build it once per code version and reuse it: the digest
 * is then computed once instead of on every call.
 */
export function createModuleSet(
  modules: JsModuleSet | Readonly<Record<string, string>> | ReadonlyMap<string, string>,
): JsModuleSet {
  if (isModuleSet(modules)) return modules;
  if (typeof modules !== "object" || modules === null) {
    throw new JsConfigError("modules must be an object mapping module names to sources");
  }
  const entries = modules instanceof Map ? [...modules.entries()] : Object.entries(modules);
  if (entries.length === 0) throw new JsConfigError("modules is empty");
  const sources = new Map<string, string>();
  for (const [name, source] of entries) {
    if (typeof name !== "string" || typeof source !== "string") {
      throw new JsConfigError(`module ${JSON.stringify(name)}: name and source must be strings`);
    }
    const canonical = canonicalModuleName(name);
    if (canonical === undefined)
      throw new JsConfigError(`module name ${JSON.stringify(name)} is not a valid path`);
    if (sources.has(canonical)) {
      throw new JsConfigError(
        `module name ${JSON.stringify(name)} duplicates another (both are "${canonical}")`,
      );
    }
    sources.set(canonical, source);
  }
  const hash = createHash("sha256");
  const lengths = Buffer.alloc(8);
  for (const name of [...sources.keys()].sort()) {
    const nameBytes = Buffer.from(name, "utf8");
    const sourceBytes = Buffer.from(sources.get(name) as string, "utf8");
    // Length-prefixed so that no two different sets hash the same byte stream.
    lengths.writeUInt32BE(nameBytes.length, 0);
    lengths.writeUInt32BE(sourceBytes.length, 4);
    hash.update(lengths).update(nameBytes).update(sourceBytes);
  }
  return Object.freeze({ [MODULE_SET]: true as const, digest: hash.digest("hex"), sources });
}

/** The canonical entry name, or a JsError when the set has no such module. */
export function entryName(set: JsModuleSet, entry: string): string {
  if (typeof entry !== "string") throw new JsConfigError("entry must be a string");
  const canonical = canonicalModuleName(entry);
  if (canonical === undefined || !set.sources.has(canonical)) {
    throw new JsError("exception", `entry module ${JSON.stringify(entry)} is not in the module set`);
  }
  return canonical;
}
