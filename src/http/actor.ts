import type { FastifyRequest } from 'fastify';

/** Who asks, as recorded on tasks and audit events: the API account's login (null for an operator) and the client IP. */
export interface Actor {
  login: string | null;
  ip: string | null;
}

export const actorOf = (request: FastifyRequest): Actor => ({ login: request.principal.login, ip: request.clientIp });
