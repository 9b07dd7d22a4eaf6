import { loggingApp } from "../../samples/logging/app.ts";
import type { App } from "../apps/index.ts";

/** Native apps built into this node image (and so into its measurement). */
export function builtInApp(name: string | null): App | null {
  if (name === null) return null;
  if (name === "logging") return loggingApp;
  throw new Error(`unknown app ${name}`);
}
