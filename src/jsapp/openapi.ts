// GET /app/api: the OpenAPI document of the installed JS endpoints, built from app.json as CCF
// builds it (each endpoint's `openapi` object is its operation; hidden ones are left out).
import type { InstalledEndpoint } from "./handler.ts";

export function openApiDocument(endpoints: readonly InstalledEndpoint[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { method, route, info } of endpoints) {
    if (info.openapi_hidden) continue;
    const path = `/app${route}`;
    const params = [...route.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    paths[path] ??= params.length > 0 ? { parameters: params } : {};
    paths[path][method.toLowerCase()] = {
      responses: { default: { description: "Default response" } },
      ...info.openapi,
      "x-coco-authn-policies": info.authn_policies,
      "x-coco-mode": info.mode,
    };
  }
  return {
    openapi: "3.0.0",
    info: {
      title: "Coco JS application",
      version: "1.0.0",
      description: "Endpoints of the installed JS app",
    },
    servers: [],
    paths,
  };
}
