import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OvhAuthError } from './ovh-auth-error.js';
import { ApiError, type OvhErrorClass } from './errors.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

/** Maps every error to OVH's body. Only known errors show their message; anything else is a bare 500, logged whole. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof ApiError) return send(reply, error.statusCode, error.ovhClass, error.message);
    if (error instanceof OvhAuthError)
      return reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toBody());
    if (error.validation) {
      return send(reply, 400, 'Client::BadRequest', validationMessage(error.validation, error.validationContext));
    }
    const status = error.statusCode ?? 500;
    if (status === 413) {
      return send(reply, 413, 'Client::PayloadTooLarge', `Request body is larger than ${app.initialConfig.bodyLimit} bytes`);
    }
    if (status === 415)
      return send(reply, 415, 'Client::UnsupportedMediaType', 'Unsupported Content-Type, send application/json');
    if (status === 429) return send(reply, 429, 'Client::TooManyRequests', 'Too many requests, retry later');
    if (status >= 400 && status < 500 && error.code?.startsWith('FST_')) {
      // Fastify's own client errors (bad JSON, bad URL…) carry safe, useful messages.
      return send(reply, status, classFor(status), error.message);
    }
    if (isDatabaseUnavailable(error)) {
      // The database is down or unreachable: the caller may retry; readiness fails meanwhile (GET /health/ready).
      request.log.error({ err: error }, 'database unavailable');
      reply.header('Retry-After', '5');
      return send(
        reply,
        503,
        'Server::ServiceUnavailable',
        `The service is temporarily unavailable, retry later (query id ${String(request.id)})`,
      );
    }
    request.log.error({ err: error }, 'request failed');
    return send(reply, 500, 'Server::InternalServerError', `Internal server error (query id ${String(request.id)})`);
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, 404, 'Client::NotFound', `Got an invalid (or empty) URL: ${request.method} ${request.url.split('?')[0]}`),
  );
}

function send(reply: FastifyReply, status: number, ovhClass: OvhErrorClass, message: string) {
  return reply.code(status).type('application/json; charset=utf-8').send({ class: ovhClass, message });
}

function classFor(status: number): OvhErrorClass {
  if (status === 404) return 'Client::NotFound';
  if (status === 403) return 'Client::Forbidden';
  if (status === 409) return 'Client::Conflict';
  return 'Client::BadRequest';
}

/** OVH names the parameter at fault in brackets: `[ip] …`, and lists unknown ones as "not described parameters". */
function validationMessage(issues: ValidationIssue[], context?: string): string {
  const unknown = issues.filter((i) => i.keyword === 'additionalProperties');
  if (unknown.length > 0) {
    const names = unknown.map((i) => String((i.params as { additionalProperty?: string }).additionalProperty));
    return `Received not described parameters: (${names.join(', ')})`;
  }
  const issue = issues[0];
  if (!issue) return 'Invalid request';
  if (issue.keyword === 'required') {
    return `[${String((issue.params as { missingProperty?: string }).missingProperty)}] Property is mandatory`;
  }
  if (issue.keyword === 'enum') {
    const allowed = (issue.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    const field = issue.instancePath.replace(/^\//, '') || context || 'body';
    return `[${field}] Given data is not valid: must be one of ${allowed.join(', ')}`;
  }
  const field = issue.instancePath.replace(/^\//, '').replace(/\//g, '.') || context || 'body';
  return `[${field}] Given data is not valid: ${issue.message ?? 'invalid value'}`;
}
