import type { Endpoint, EndpointOptions, Handler, HttpMethod } from "./endpoint.ts";
import type { Executor, ExecutorMatch } from "./executor.ts";
import { Router } from "./router.ts";

/** A native TypeScript app: a named set of endpoints served under `/app`; the first executor. */
export class App implements Executor {
  readonly router = new Router();
  constructor(readonly name: string) {}

  match(method: HttpMethod, path: string): ExecutorMatch {
    return this.router.match(method, path);
  }

  endpoint(method: HttpMethod, path: string, options: EndpointOptions, handler: Handler): this {
    const endpoint: Endpoint = { method, path, handler, ...options };
    if (options.auth.length === 0) throw new Error(`${method} ${path}: at least one auth policy is required`);
    this.router.add(endpoint);
    return this;
  }
  get(path: string, options: EndpointOptions, handler: Handler): this {
    return this.endpoint("GET", path, options, handler);
  }
  put(path: string, options: EndpointOptions, handler: Handler): this {
    return this.endpoint("PUT", path, options, handler);
  }
  post(path: string, options: EndpointOptions, handler: Handler): this {
    return this.endpoint("POST", path, options, handler);
  }
  delete(path: string, options: EndpointOptions, handler: Handler): this {
    return this.endpoint("DELETE", path, options, handler);
  }
}

export function defineApp(name: string, build: (app: App) => void): App {
  const app = new App(name);
  build(app);
  return app;
}
