import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/database.js';
import { api, type Authenticate } from './http/api.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerJsonBody } from './http/json-body.js';
import { newQueryId } from './http/query-id.js';
import { sharedSchemas } from './http/schemas.js';
import type { App } from './http/types.js';
import { healthRoutes } from './http/health.js';
import { openApiOptions } from './http/openapi.js';
import { ServicesService } from './modules/services/service.js';
import { TaskService } from './modules/tasks/service.js';
import { WhitelistService } from './modules/whitelist/service.js';

export interface AppServices {
  services: ServicesService;
  whitelist: WhitelistService;
  tasks: TaskService;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: AppServices;
  }
}

export interface AppDeps {
  handle: DatabaseHandle;
  config: Config;
  clock?: Clock;
  /** Fastify's `logger` option: pino options, or `false` (tests). */
  logger?: FastifyServerOptions['logger'];
  authenticate?: Authenticate;
  https?: { key: Buffer; cert: Buffer } | null;
}

/** The operator principal: sees every service. Used until signed calls are configured. */
export const operatorAccess: Authenticate = async () => ({ accountId: null, login: null });

export function publicUrlOf(config: Config): string {
  return config.PUBLIC_URL ?? `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${config.PORT}`;
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
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  };
  // With TLS the raw server is an https.Server; every route sees the same request and reply API.
  if (deps.https) Object.assign(options, { https: deps.https });
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('services', {
    services: new ServicesService(handle.db, publicUrlOf(config)),
    whitelist: new WhitelistService(handle.db, clock, {
      maxEntries: config.WHITELIST_MAX_ENTRIES,
      minPrefixV4: config.WHITELIST_MIN_PREFIX_V4,
      minPrefixV6: config.WHITELIST_MIN_PREFIX_V6,
    }),
    tasks: new TaskService(handle.db, clock),
  });

  // Every response, errors and 404s included, carries the id that is also in its log line.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Ovh-QueryID', request.id);
  });
  registerJsonBody(app);
  registerErrorHandling(app);
  for (const schema of sharedSchemas) app.addSchema(schema);

  await app.register(swagger, openApiOptions());
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(rateLimit, {
    global: true,
    max: config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    allowList: (request) => request.url.startsWith('/health/'),
  });

  await app.register(healthRoutes, { handle });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const authenticate = deps.authenticate ?? operatorAccess;
  await app.register(api, { prefix: '/1.0', authenticate });
  await app.register(api, { prefix: '/v1', authenticate, hideFromSpec: true });
  return app;
}
