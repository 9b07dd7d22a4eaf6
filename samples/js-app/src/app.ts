// A notes service: typed maps from @microsoft/ccf-app, CCF's request and response types.
import * as ccfapp from "@microsoft/ccf-app";

interface Note {
  text: string;
  author: string;
}

const notes = ccfapp.typedKv("notes", ccfapp.string, ccfapp.json<Note>());

export function putNote(request: ccfapp.Request<{ text?: unknown }>): ccfapp.Response {
  const body = request.body.json();
  if (typeof body.text !== "string" || body.text.length === 0) {
    return { statusCode: 400, body: "text must be a non-empty string" };
  }
  const caller = request.caller as { id?: string } | null;
  notes.set(request.params.id ?? "", { text: body.text, author: caller?.id ?? "unknown" });
  return { statusCode: 204 };
}

export function getNote(request: ccfapp.Request): ccfapp.Response<Note> {
  const note = notes.get(request.params.id ?? "");
  if (note === undefined) return { statusCode: 404 };
  return { body: note };
}

export function whoami(request: ccfapp.Request): ccfapp.Response<{ policy: unknown }> {
  return { body: { policy: (request.caller as { policy?: unknown } | null)?.policy ?? null } };
}
