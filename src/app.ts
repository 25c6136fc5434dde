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
import { ovhAuthenticator } from './auth/authenticate.js';
import { AuthService } from './auth/service.js';
import validationPage from './auth/validation-page.js';
import { OperationService } from './modules/operations/service.js';
import { UsersService } from './modules/users/service.js';
import secureRoutes from './secure/routes.js';
import { AuditService } from './modules/audit/service.js';
import { AllowedNetworkService } from './modules/allowed-network/service.js';
import { SecureService } from './secure/service.js';
import { Lockout } from './security/lockout.js';
import { SecretBox } from './security/secret-box.js';
import { randomBytes } from 'node:crypto';

export interface AppServices {
  services: ServicesService;
  whitelist: WhitelistService;
  tasks: TaskService;
  auth: AuthService;
  users: UsersService;
  operations: OperationService;
  secure: SecureService;
  audit: AuditService;
  allowedNetworks: AllowedNetworkService;
}

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
}

/** The operator principal: sees every service. Never used by the server; tests and tools may. */
export const operatorAccess: Authenticate = async () => ({ accountId: null, login: null, credentialId: null });

export function publicUrlOf(config: Config): string {
  if (config.PUBLIC_URL) return config.PUBLIC_URL;
  const scheme = config.TLS_CERT ? 'https' : 'http';
  // A wildcard address listens everywhere but is no address to give out: this machine's loopback is.
  const host = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST === '::' ? 'localhost' : config.HOST;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`;
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

  const box = deps.secretBox ?? new SecretBox([{ id: 'ephemeral', key: randomBytes(32) }]);
  const operations = new OperationService(handle.db, box, clock);
  const allowedNetworks = new AllowedNetworkService(handle.db, clock);
  const users = new UsersService(handle.db, box, clock, operations);
  app.decorate('services', {
    users,
    operations,
    audit: new AuditService(handle.db),
    allowedNetworks,
    secure: new SecureService(handle.db, box, clock, new Lockout(handle.db, clock), users, operations, allowedNetworks),
    services: new ServicesService(handle.db, publicUrlOf(config)),
    whitelist: new WhitelistService(handle.db, clock, {
      maxEntries: config.WHITELIST_MAX_ENTRIES,
      minPrefixV4: config.WHITELIST_MIN_PREFIX_V4,
      minPrefixV6: config.WHITELIST_MIN_PREFIX_V6,
    }),
    tasks: new TaskService(handle.db, clock),
    auth: new AuthService(handle.db, box, clock, {
      timeWindowSeconds: config.AUTH_TIME_WINDOW_SECONDS,
      oauthTokenTtlSeconds: config.OAUTH2_TOKEN_TTL_SECONDS,
      credentialValidationSeconds: config.CREDENTIAL_VALIDATION_SECONDS,
      publicUrl: config.PUBLIC_URL,
    }),
  });
  app.decorate('clock', clock);

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

  await app.register(validationPage);
  await app.register(secureRoutes);
  const authenticate = deps.authenticate ?? ovhAuthenticator(app.services.auth);
  const apiOptions = { authenticate, publicUrl: config.PUBLIC_URL };
  await app.register(api, { prefix: '/1.0', ...apiOptions });
  await app.register(api, { prefix: '/v1', ...apiOptions, hideFromSpec: true });
  return app;
}
