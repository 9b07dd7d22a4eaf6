// Fresh module state for every call without parsing the module again: the module's source, its
// `export` keywords blanked, compiled once as the body of a strict function that returns the
// exports. Each call runs that function, so top-level `let`/`const`/`var`, classes and the
// objects the module builds are new for the call, as if the module had just been evaluated; the
// compiled code is shared. QuickJS finds the `export` keywords: as function code, each one is a
// SyntaxError ("unsupported keyword: export") at its exact line and column, so no string, comment
// or regular expression can be mistaken for one.
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";

/** Exports that become ordinary declarations once `export` is blanked. */
const DECLARATION = /^export(\s+)(?:async\s+function|function|class|const|let|var)\b/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** More `export`s than this and the module is run the slow way. */
const MAX_EXPORTS = 256;
const PREFIX = '(function () { "use strict"; ';

/** Where QuickJS reports a syntax error of `entry` ("at entry:line:column"), if it does. */
function errorPosition(stack: string, entry: string): { line: number; column: number } | undefined {
  const at = stack.lastIndexOf(`${entry}:`);
  if (at < 0) return undefined;
  const match = /^:(\d+):(\d+)/.exec(stack.slice(at + entry.length));
  return match ? { line: Number(match[1]), column: Number(match[2]) } : undefined;
}

/** Offsets in `text` of a 1-based line and column, reading the column as UTF-16 units and as UTF-8 bytes. */
function offsetsOf(text: string, line: number, column: number, firstLineShift: number): number[] {
  let start = 0;
  for (let l = 1; l < line; l++) {
    const next = text.indexOf("\n", start);
    if (next < 0) return [];
    start = next + 1;
  }
  const col = column - 1 - (line === 1 ? firstLineShift : 0);
  if (col < 0) return [];
  const end = text.indexOf("\n", start);
  const bytes = Buffer.from(text.slice(start, end < 0 ? undefined : end), "utf8").subarray(0, col);
  return [start + col, start + bytes.toString("utf8").length];
}

function describe(ctx: QuickJSContext, error: QuickJSHandle): { message: string; stack: string } {
  const prop = (key: string) =>
    ctx.getProp(error, key).consume((h) => (ctx.typeof(h) === "string" ? ctx.getString(h) : ""));
  return { message: prop("message"), stack: prop("stack") };
}

/**
 * Compiles the factory of `entry`'s instances in `ctx`: a function returning a new object with the
 * module's exports `names`. Checks it against the module's own `namespace` (same names, same
 * kinds). Null when the module cannot be run this way (imports, `export default`, export lists,
 * top-level await, ...): the caller then evaluates the module afresh for each call instead.
 */
export function moduleFactory(
  ctx: QuickJSContext,
  entry: string,
  source: string,
  names: string[],
  namespace: QuickJSHandle,
): QuickJSHandle | null {
  if (names.length > MAX_EXPORTS || !names.every((n) => IDENTIFIER.test(n))) return null;
  const suffix = `\n;return { ${names.map((n) => `${n}: ${n}`).join(", ")} };\n})`;
  let text = source;
  for (let attempt = 0; attempt <= MAX_EXPORTS; attempt++) {
    const compiled = ctx.evalCode(PREFIX + text + suffix, entry, { type: "global" });
    if (compiled.error === undefined) {
      const factory = compiled.value;
      if (matches(ctx, factory, names, namespace)) return factory;
      factory.dispose();
      return null;
    }
    const { message, stack } = describe(ctx, compiled.error);
    compiled.error.dispose();
    if (message !== "unsupported keyword: export") return null;
    const position = errorPosition(stack, entry);
    if (position === undefined) return null;
    const at = offsetsOf(text, position.line, position.column, PREFIX.length).find((o) =>
      DECLARATION.test(text.slice(o, o + 64)),
    );
    if (at === undefined) return null;
    text = `${text.slice(0, at)}      ${text.slice(at + "export".length)}`;
  }
  return null;
}

/** Runs the factory once: its instance must have exactly the module's exports, of the same kinds. */
function matches(
  ctx: QuickJSContext,
  factory: QuickJSHandle,
  names: string[],
  namespace: QuickJSHandle,
): boolean {
  const made = ctx.callFunction(factory, ctx.undefined);
  if (made.error !== undefined) {
    made.error.dispose();
    return false;
  }
  try {
    return names.every((name) => {
      const mine = ctx.getProp(made.value, name).consume((h) => ctx.typeof(h));
      const theirs = ctx.getProp(namespace, name).consume((h) => ctx.typeof(h));
      return mine === theirs;
    });
  } finally {
    made.value.dispose();
  }
}
