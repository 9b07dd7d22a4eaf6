export { App, defineApp } from "./app.ts";
export { type Codec, jsonCodec, stringCodec, TypedMap, u64Codec } from "./codec.ts";
export {
  type AppRequest,
  type AppResponse,
  type AuthPolicy,
  type Caller,
  type Endpoint,
  type EndpointMode,
  type EndpointOptions,
  type Handler,
  type HandlerContext,
  HttpError,
  type HttpMethod,
  type OutboundRequest,
  type OutboundResponse,
  RerunWithFetched,
} from "./endpoint.ts";
export { type Executor, type ExecutorMatch, ExecutorRegistry } from "./executor.ts";
export { RouteError, Router } from "./router.ts";
