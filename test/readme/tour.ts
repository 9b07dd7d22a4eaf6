/**
 * The README's tour as data: its code blocks in order, each command with the output it shows,
 * and the matching rules that decide whether real output has the shown output's shape.
 */

export type Block =
  | { kind: "startup"; text: string }
  | { kind: "setup"; commands: string[] }
  | { kind: "session"; steps: Array<{ command: string; output: string }> }
  | { kind: "json"; text: string };

/** The code blocks of the section `## A five-minute tour`, in order. */
export function tourBlocks(readme: string): Block[] {
  const start = readme.indexOf("## A five-minute tour");
  if (start < 0) throw new Error("README has no '## A five-minute tour' section");
  const next = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const blocks: Block[] = [];
  for (const match of section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    const [, info, body] = match as unknown as [string, string, string];
    if (info === "text") blocks.push({ kind: "startup", text: body });
    else if (info === "json") blocks.push({ kind: "json", text: body });
    else if (info === "sh") blocks.push({ kind: "setup", commands: commandsOf(body.split("\n")) });
    else if (info === "console") blocks.push({ kind: "session", steps: sessionOf(body) });
    else throw new Error(`tour block with info string "${info}": use text, sh, console or json`);
  }
  return blocks;
}

/** Joins lines continued with a trailing backslash into one command each. */
function commandsOf(lines: string[]): string[] {
  const out: string[] = [];
  let current: string | undefined;
  for (const line of lines) {
    if (current === undefined && line.trim() === "") continue;
    current = current === undefined ? line : `${current}\n${line}`;
    if (!line.endsWith("\\")) {
      out.push(current);
      current = undefined;
    }
  }
  if (current !== undefined) out.push(current);
  return out;
}

/** `$ command` lines (with their continuations), each followed by the output it shows. */
function sessionOf(body: string): Array<{ command: string; output: string }> {
  const steps: Array<{ command: string; output: string }> = [];
  const lines = body.replace(/\n$/, "").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (!line.startsWith("$ ")) throw new Error(`console block: output before any command: ${line}`);
    let command = line.slice(2);
    while (command.endsWith("\\") && i + 1 < lines.length) command += `\n${lines[++i]}`;
    i++;
    const output: string[] = [];
    while (i < lines.length && !lines[i]!.startsWith("$ ")) output.push(lines[i++]!);
    steps.push({ command, output: output.join("\n") });
  }
  return steps;
}

/** Base64 (certificates, signatures): 16+ characters of its alphabet, one of them not a letter. */
const BASE64 = "(?=[A-Za-z0-9+/]*[0-9+/])[A-Za-z0-9+/]{16,}=*";
const MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";

/**
 * A shown line as a pattern: `...` stands for anything; base64 and hex strings, numbers, month
 * names and runs of spaces stand for any of their kind; everything else must be as shown.
 */
export function linePattern(shown: string): RegExp {
  const token = new RegExp(`(\\.\\.\\.|${BASE64}|[0-9a-f]{8,}|[0-9]+|${MONTH}|\\s+)`);
  const split = shown.split(token);
  const parts0 = split[0];
  const parts = split.map((part, i) => {
    if (i % 2 === 0) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    if (part === "...") return "[\\s\\S]*?";
    // Leading spaces line columns up (a right-aligned "  1.9 s" is "108.7 s" later): optional.
    if (/^\s+$/.test(part)) return i === 1 && parts0 === "" ? "\\s*" : "\\s+";
    if (/^[0-9]+$/.test(part)) return "[0-9]+";
    if (new RegExp(`^${MONTH}$`).test(part)) return "[A-Z][a-z]{2}";
    if (new RegExp(`^${BASE64}$`).test(part)) return "[A-Za-z0-9+/=]+";
    return "[0-9a-f]+";
  });
  return new RegExp(`^${parts.join("")}$`);
}

/**
 * Why `actual` does not have the shape of `shown`, or undefined if it does. JSON is compared as
 * JSON (every shown key present, values of the same kind, strings as line patterns, each shown
 * array element like some actual one); anything else line by line: each shown line, in order,
 * matches a line of the actual output (so `...` lines may stand for lines left out).
 */
export function shapeProblem(shown: string, actual: string): string | undefined {
  if (shown.trim() === "") return undefined;
  const shownJson = parseJson(shown);
  const actualJson = parseJson(actual);
  if (shownJson !== undefined && actualJson !== undefined) return jsonProblem(shownJson, actualJson, "$");
  const lines = actual.split("\n").map((l) => l.replace(/\s+$/, ""));
  let at = 0;
  for (const line of shown.split("\n").filter((l) => l.trim() !== "...")) {
    const pattern = linePattern(line.replace(/\s+$/, ""));
    while (at < lines.length && !pattern.test(lines[at]!)) at++;
    if (at === lines.length) return `no line like ${JSON.stringify(line)}`;
    at++;
  }
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function jsonProblem(shown: unknown, actual: unknown, path: string): string | undefined {
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return `${path}: an array was shown`;
    if (shown.length > 0 && actual.length === 0) return `${path}: empty`;
    for (const [i, element] of shown.entries()) {
      if (actual.every((a) => jsonProblem(element, a, `${path}[${i}]`) !== undefined)) {
        return `${path}[${i}]: no element like ${JSON.stringify(element)}`;
      }
    }
    return undefined;
  }
  if (shown !== null && typeof shown === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual))
      return `${path}: not an object`;
    for (const [key, value] of Object.entries(shown)) {
      if (!(key in actual)) return `${path}.${key}: missing`;
      const problem = jsonProblem(value, (actual as Record<string, unknown>)[key], `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof shown === "string") {
    if (typeof actual !== "string") return `${path}: not a string`;
    return linePattern(shown).test(actual)
      ? undefined
      : `${path}: ${JSON.stringify(actual)} is not like ${JSON.stringify(shown)}`;
  }
  if (shown === null) return actual === null ? undefined : `${path}: not null`;
  return typeof shown === typeof actual ? undefined : `${path}: not a ${typeof shown}`;
}
