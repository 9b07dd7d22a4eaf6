import { resolve } from "node:path";

/** A configuration the node refuses, naming the setting and what is wrong with it. */
export class ConfigError extends Error {}

/** The primitives of config validation: each names the setting's path in its error. */
export type Json = Record<string, unknown>;

export function fail(path: string, message: string): never {
  throw new ConfigError(`config ${path}: ${message}`);
}

export function objectAt(value: unknown, path: string, allowed: string[]): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(path, "must be an object");
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${path}.${key}`, `unknown setting (allowed: ${allowed.join(", ")})`);
  }
  return value as Json;
}

export function stringAt(obj: Json, key: string, path: string, fallback?: string): string {
  const value = obj[key] ?? fallback;
  if (typeof value !== "string" || value.length === 0) fail(`${path}.${key}`, "must be a non-empty string");
  return value;
}

export function intAt(
  obj: Json,
  key: string,
  path: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = obj[key] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    fail(`${path}.${key}`, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function certListAt(obj: Json, key: string, base: string): Array<{ cert: string }> {
  const list = obj[key] ?? [];
  if (!Array.isArray(list)) fail(key, 'must be an array of {"cert": "<file>"}');
  return list.map((item, i) => {
    const entry = objectAt(item, `${key}[${i}]`, ["cert"]);
    return { cert: resolve(base, stringAt(entry, "cert", `${key}[${i}]`)) };
  });
}

export function memberListAt(obj: Json, base: string): Array<{ cert: string; encryptionPublicKey?: string }> {
  const list = obj.members ?? [];
  if (!Array.isArray(list))
    fail("members", 'must be an array of {"cert": "<file>", "encryptionPublicKey"?: "<file>"}');
  return list.map((item, i) => {
    const entry = objectAt(item, `members[${i}]`, ["cert", "encryptionPublicKey"]);
    const key = entry.encryptionPublicKey;
    return {
      cert: resolve(base, stringAt(entry, "cert", `members[${i}]`)),
      ...(key === undefined
        ? {}
        : { encryptionPublicKey: resolve(base, stringAt(entry, "encryptionPublicKey", `members[${i}]`)) }),
    };
  });
}
