import type { Endpoint, HttpMethod } from "./endpoint.ts";

type Segment = { literal: string } | { param: string };

interface Route {
  endpoint: Endpoint;
  segments: Segment[];
}

export class RouteError extends Error {}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

function parseTemplate(path: string): Segment[] {
  if (!path.startsWith("/")) throw new RouteError(`endpoint path must start with '/': ${path}`);
  return path
    .slice(1)
    .split("/")
    .map((part) => {
      const param = PARAM.exec(part);
      if (param) return { param: param[1]! };
      if (part.includes("{") || part.includes("}"))
        throw new RouteError(`bad path segment '${part}' in ${path}`);
      return { literal: part };
    });
}

/** Matches method + path against endpoint templates; literal segments win over parameters. */
export class Router {
  private readonly routes: Route[] = [];

  add(endpoint: Endpoint): void {
    const segments = parseTemplate(endpoint.path);
    const clash = this.routes.find(
      (r) =>
        r.endpoint.method === endpoint.method &&
        r.segments.length === segments.length &&
        r.segments.every((s, i) => JSON.stringify(s) === JSON.stringify(segments[i])),
    );
    if (clash) throw new RouteError(`${endpoint.method} ${endpoint.path} is registered twice`);
    this.routes.push({ endpoint, segments });
    // Most literal segments first, so `/log/private/count` beats `/log/private/{id}`.
    this.routes.sort((a, b) => literalCount(b) - literalCount(a));
  }

  /** `undefined` if no template matches the path; `methodNotAllowed` if only other methods do. */
  match(
    method: HttpMethod,
    path: string,
  ): { endpoint: Endpoint; params: Record<string, string> } | { methodNotAllowed: true } | undefined {
    const parts = path.slice(1).split("/");
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.endpoint.method === method) return { endpoint: route.endpoint, params };
      pathMatched = true;
    }
    return pathMatched ? { methodNotAllowed: true } : undefined;
  }

  endpoints(): Endpoint[] {
    return this.routes.map((r) => r.endpoint);
  }
}

function literalCount(route: Route): number {
  return route.segments.filter((s) => "literal" in s).length;
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if ("literal" in segment) {
      if (segment.literal !== part) return undefined;
    } else {
      if (part.length === 0) return undefined;
      try {
        params[segment.param] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    }
  }
  return params;
}
