import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { systemClock, type Clock } from './clock.js';
import { publicUrlOf, type Config } from './config.js';
import { buildServices, type AppServices } from './composition.js';
import type { DatabaseHandle } from './db/database.js';
import { api } from './api-routes.js';
import { cachedSchemaCompilers } from './http/schema-compilers.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerJsonBody } from './http/json-body.js';
import { registerFiniteNumbers } from './http/finite-numbers.js';
import { newQueryId } from './http/query-id.js';
import { badRequest } from './http/errors.js';
import { canonicalIp, clientNetworkKey } from './security/addresses.js';
import { sharedSchemas } from './http/schemas.js';
import type { App, Authenticate } from './http/types.js';
import { healthRoutes } from './http/health.js';
import { metricsRoute } from './metrics/http.js';
import { openApiOptions } from './http/openapi.js';
import { ovhAuthenticator } from './features/ovh-auth/authenticate.js';
import validationPage from './features/ovh-auth/validation-page.js';
import secureRoutes from './features/secure/routes.js';
import securePages from './features/secure/pages/routes.js';
import { SecretBox } from './security/secret-box.js';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

declare module 'fastify' {
  interface FastifyInstance {
    services: AppServices;
    clock: Clock;
  }
}

export interface AppDeps {
  handle: DatabaseHandle;
  config: Config;
  clock?: Clock;
  /** Fastify's `logger` option: pino options, or `false` (tests). */
  logger?: FastifyServerOptions['logger'];
  /**
   * Seals stored secrets; the server passes the configured keys (`secretBoxFor` in runtime.ts). Without one, a
   * random key that dies with the process: fine for tests and tools, never for data that must outlive it.
   */
  secretBox?: SecretBox;
  /** Replaces OVH's authentication (tests of routes that are not about authentication use `operatorAccess`). */
  authenticate?: Authenticate;
  https?: { key: Buffer; cert: Buffer } | null;
  /** The services, when the caller built them already (the server shares them with its worker). */
  services?: AppServices;
}

export { publicUrlOf };

/** The operator principal: sees every service. Never used by the server; tests and tools may. */
export const operatorAccess: Authenticate = async () => ({ accountId: null, login: null, credentialId: null });

/** The raw server's limits on slow clients; its connections are checked often enough to enforce them. */
function serverTimeouts(config: Config) {
  return {
    headersTimeout: config.HEADERS_TIMEOUT_MS,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: Math.max(50, Math.min(5000, Math.floor(config.HEADERS_TIMEOUT_MS / 4))),
  };
}

/** The headers that carry a caller's credentials: each may appear once. */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'x-ovh-application',
  'x-ovh-consumer',
  'x-ovh-timestamp',
  'x-ovh-signature',
]);

function repeatedCredentialHeader(rawHeaders: string[]): string | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    if (!CREDENTIAL_HEADERS.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/**
 * Node's HTTP parser refused the request (headers over its size limit, a malformed line, a body framed twice): no
 * route ran, so the answer is written on the socket here, with OVH's body, and the connection closed.
 */
function clientErrorAnswer(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, ovhClass, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'Client::BadRequest', 'The request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'Client::BadRequest', 'The request took too long to arrive']
        : [400, 'Bad Request', 'Client::BadRequest', 'The request is not valid HTTP'];
  const body = JSON.stringify({ class: ovhClass, message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Security headers on every answer (what helmet set, computed once): nosniff, no framing, no referrer, a CSP that
 * allows nothing (JSON needs nothing), and HSTS once the browser speaks TLS: the server's own, or a proxy's in front
 * (an https PUBLIC_URL). The HTML pages and Swagger UI set their own CSP over this one.
 */
function securityHeadersFor(tls: boolean): [string, string][] {
  return [
    ['Content-Security-Policy', "default-src 'none';frame-ancestors 'none'"],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ['Origin-Agent-Cluster', '?1'],
    ['Referrer-Policy', 'no-referrer'],
    ...(tls ? [['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'] as [string, string]] : []),
    ['X-Content-Type-Options', 'nosniff'],
    ['X-DNS-Prefetch-Control', 'off'],
    ['X-Download-Options', 'noopen'],
    ['X-Frame-Options', 'DENY'],
    ['X-Permitted-Cross-Domain-Policies', 'none'],
    ['X-XSS-Protection', '0'],
  ];
}

/** What no request target or header set may hold, checked before any route runs; the error to answer, if any. */
function requestTargetProblem(request: FastifyRequest): Error | undefined {
  const url = request.raw.url ?? '';
  // A fragment is never sent by a client: the router would stop the path at `#` and read the rest as a query.
  if (url.includes('#')) return badRequest('The request target must not hold a fragment (#)');
  // PostgreSQL stores no NUL character, and no name or value here has one: refused before any code reads it.
  if (url.includes('%00')) return badRequest('The request target holds a NUL character (%00)');
  // Two credentials in one request are ambiguous (Node keeps the first Authorization, a proxy may keep the last).
  const repeated = repeatedCredentialHeader(request.raw.rawHeaders);
  if (repeated) return badRequest(`The request holds the header ${repeated} more than once`);
  // What a trusted proxy forwards may be anything: only an address reaches the code (and PostgreSQL's inet).
  const ip = canonicalIp(request.ip);
  if (ip === undefined) return badRequest('The client address is not an IP address');
  request.clientIp = ip;
  return undefined;
}

/** Builds the whole app without listening: the server listens, tests inject. */
export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, handle } = deps;
  const clock = deps.clock ?? systemClock;
  const options: FastifyServerOptions = {
    logger: deps.logger ?? false,
    genReqId: newQueryId,
    requestIdHeader: false,
    bodyLimit: config.BODY_LIMIT,
    trustProxy: config.TRUSTED_PROXIES.trim() === '' ? false : config.TRUSTED_PROXIES,
    return503OnClosing: true,
    // Slow clients (slowloris): headers within HEADERS_TIMEOUT_MS, the whole request within REQUEST_TIMEOUT_MS, both
    // checked every quarter of the headers' time (Node's default checks every 30 s).
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    // What the router cannot even decode (`%ff`) gets OVH's body and the headers every answer has.
    frameworkErrors: (error, request, reply) => {
      reply.header('X-Ovh-QueryID', request.id).header('X-Content-Type-Options', 'nosniff');
      const status = (error as { statusCode?: number }).statusCode ?? 400;
      const raw = reply as unknown as FastifyReply;
      void raw
        .code(status >= 400 && status < 500 ? status : 400)
        .type('application/json; charset=utf-8')
        .send({ class: 'Client::BadRequest', message: error.message });
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    // Each distinct schema is compiled once per process (the API's two prefixes, the test suites' many apps).
    schemaController: { compilersFactory: cachedSchemaCompilers() },
    // What Node's HTTP parser refuses before any route sees it (oversized or malformed headers) gets OVH's body too.
    clientErrorHandler: clientErrorAnswer,
  };
  // With TLS the raw server is an https.Server; every route sees the same request and reply API.
  if (deps.https) Object.assign(options, { https: { ...deps.https, ...serverTimeouts(config) } });
  else Object.assign(options, { http: serverTimeouts(config) });
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>();

  const box = deps.secretBox ?? new SecretBox([{ id: 'ephemeral', key: randomBytes(32) }]);
  app.decorate('services', deps.services ?? buildServices({ db: handle.db, box, clock, config, pool: handle.poolStats }));
  app.decorate('clock', clock);
  app.services.background.onError = (err, what) => app.log.error({ err, what }, 'background work failed');
  // Work a request left running (a password-lost code being queued) ends before the database closes.
  app.addHook('onClose', async () => app.services.background.settled());

  app.decorateRequest('clientIp', '');
  const securityHeaders = securityHeadersFor(Boolean(deps.https) || publicUrlOf(config).startsWith('https:'));
  // One hook for what every request needs first (callback style: no promise per request on the hot path).
  app.addHook('onRequest', (request, reply, done) => {
    const raw = reply.raw;
    for (const [name, value] of securityHeaders) raw.setHeader(name, value);
    // Every response, errors and 404s included, carries the id that is also in its log line.
    reply.header('X-Ovh-QueryID', request.id);
    done(requestTargetProblem(request));
  });
  // A stop waits for the requests in flight; their keep-alive connections must not hold it for the idle timeout
  // afterwards: once the stop has begun, every answer closes its connection.
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (stopping) reply.header('Connection', 'close');
    done(null, payload);
  });
  // Labelled by the route's pattern, never the URL a client typed: a scan of random paths adds no series.
  const { metrics } = app.services;
  app.addHook('onResponse', (request, reply, done) => {
    metrics.request(request.method, request.routeOptions.url ?? '(unmatched)', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  registerJsonBody(app);
  registerFiniteNumbers(app);
  registerErrorHandling(app);
  for (const schema of sharedSchemas) app.addSchema(schema);

  await app.register(swagger, openApiOptions());
  // Swagger UI, where operators type OAuth2 secrets: its own files only, never in a frame.
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: [
      "default-src 'self'",
      "base-uri 'self'",
      "object-src 'none'",
      "script-src 'self'",
      "script-src-attr 'none'",
      "style-src 'self'",
      "img-src 'self' data:",
      "font-src 'self' data:",
      "form-action 'self'",
      "frame-ancestors 'none'",
      ...(deps.https ? ['upgrade-insecure-requests'] : []),
    ].join('; '),
  });
  await app.register(rateLimit, {
    global: true,
    max: config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    keyGenerator: (request) => clientNetworkKey(request.clientIp || request.ip),
    allowList: (request) => request.url.startsWith('/health/'),
  });

  await app.register(healthRoutes, { handle });
  if (config.METRICS_TOKEN) await app.register(metricsRoute, { metrics, token: config.METRICS_TOKEN });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(validationPage);
  await app.register(secureRoutes);
  await app.register(securePages, { box, publicUrl: publicUrlOf(config) });
  const authenticate = deps.authenticate ?? ovhAuthenticator(app.services.auth);
  const apiOptions = { authenticate, publicUrl: config.PUBLIC_URL };
  await app.register(api, { prefix: '/1.0', ...apiOptions });
  await app.register(api, { prefix: '/v1', ...apiOptions, hideFromSpec: true });
  return app;
}
