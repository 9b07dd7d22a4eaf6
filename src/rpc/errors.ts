import type { FastifyReply } from "fastify";

/** Coco's error body: `{"error": {"code", "message"}}`, the shape CCF clients already parse. */
export function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.status(status).type("application/json").send({ error: { code, message } });
}

/** Maps fastify's own request errors (body too large, bad content) to Coco's error shape. */
export function fastifyErrorCode(status: number): string {
  if (status === 413) return "RequestBodyTooLarge";
  if (status === 415) return "UnsupportedContentType";
  if (status === 404) return "ResourceNotFound";
  if (status >= 400 && status < 500) return "InvalidInput";
  return "InternalError";
}
