import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../http/errors.js';
import type { Metrics } from './registry.js';

/** Whether `header` is `Bearer <token>`: compared in constant time (both sides hashed, so lengths leak nothing). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  const given = createHash('sha256')
    .update(match?.[1] ?? '')
    .digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, expected) && match !== null;
}

const refused = () =>
  new ApiError(401, 'Client::Unauthorized', 'This route needs the metrics token: Authorization: Bearer <token>');

/**
 * `GET /metrics` on the API's own port, registered only when METRICS_TOKEN is set, and answered only with that token.
 * Without a token there is no such route: 404, like any unknown URL.
 */
export async function metricsRoute(app: FastifyInstance, { metrics, token }: { metrics: Metrics; token: string }) {
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (!bearerMatches(request.headers.authorization, token)) {
      reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
      throw refused();
    }
    return reply.type(metrics.contentType).send(await metrics.scrape());
  });
}

export interface MetricsListener {
  /** The address it listens on, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The separate metrics listener (METRICS_PORT, on METRICS_HOST: loopback by default). It serves `GET /metrics` and
 * nothing else; with a METRICS_TOKEN set, it asks for the token too.
 */
export async function startMetricsListener(options: {
  metrics: Metrics;
  host: string;
  port: number;
  token?: string | undefined;
  onError?: (err: unknown) => void;
}): Promise<MetricsListener> {
  const { metrics, token } = options;
  const answer = (res: http.ServerResponse, status: number, ovhClass: string, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-content-type-options': 'nosniff' });
    res.end(JSON.stringify({ class: ovhClass, message }));
  };
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return answer(res, 404, 'Client::NotFound', 'Only /metrics is served here');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return answer(res, 405, 'Client::BadRequest', 'Only GET is allowed');
    }
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      res.setHeader('www-authenticate', 'Bearer realm="metrics"');
      return answer(res, 401, 'Client::Unauthorized', refused().message);
    }
    metrics.scrape().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        options.onError?.(err);
        answer(res, 500, 'Server::InternalServerError', 'The metrics could not be collected');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
