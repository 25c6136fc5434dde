import type { FastifyRequest } from 'fastify';
import pino, { type LoggerOptions } from 'pino';

/**
 * Never in a log line: passwords, secrets, tokens, signatures, consumer keys. Listed by path for pino's `redact`;
 * query strings are cut from logged URLs because some carry tokens (validation links).
 */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-ovh-signature"]',
  'req.headers["x-ovh-consumer"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.newPassword',
  '*.secret',
  '*.token',
  '*.code',
  '*.sessionToken',
  '*.consumerKey',
  '*.applicationSecret',
  '*.clientSecret',
  '*.access_token',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: stripQuery(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
}

function stripQuery(url: string): string {
  const i = url.indexOf('?');
  return i < 0 ? url : `${url.slice(0, i)}?[redacted]`;
}

/** A process logger; `toStderr` keeps stdout free for a command's output. */
export const createLogger = (level: string, toStderr = false) =>
  toStderr ? pino(loggerOptions(level), pino.destination(2)) : pino(loggerOptions(level));
