import { readFileSync } from "node:fs";

/** The files of a constitution in CCF's order; joined with "\n" into the one stored module. */
export const CONSTITUTION_FILES = ["actions.js", "validate.js", "resolve.js", "apply.js"] as const;

/** Joins constitution files as CCF does (in the given order, separated by a newline). */
export function joinConstitution(sources: string[]): string {
  return sources.join("\n");
}

/** Coco's own default constitution (src/gov/constitution): CCF's action names, strict-majority votes. */
export function defaultConstitution(): string {
  return joinConstitution(
    CONSTITUTION_FILES.map((f) => readFileSync(new URL(`./constitution/${f}`, import.meta.url), "utf8")),
  );
}
