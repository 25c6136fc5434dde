import serviceRoutes from './features/services/routes.js';
import taskRoutes from './features/tasks/routes.js';
import whitelistRoutes from './features/whitelist/routes.js';
import userRoutes from './features/users/routes.js';
import rightsRoutes from './features/users/rights-routes.js';
import securityOptionRoutes from './features/security-options/routes.js';
import unlockRoutes from './features/secure/unlock-routes.js';
import auditRoutes from './features/audit/routes.js';
import allowedNetworkRoutes from './features/allowed-network/routes.js';
import type { App, Authenticate, Principal } from './http/types.js';
import authRoutes from './features/ovh-auth/routes.js';
import oauth2Routes from './features/ovh-auth/oauth2-routes.js';
import { serviceNotFound } from './http/errors.js';

export interface ApiOptions {
  authenticate: Authenticate;
  publicUrl: string | undefined;
  /** The `/v1` copy is served but left out of the OpenAPI document, which would otherwise list every route twice. */
  hideFromSpec?: boolean;
}

/**
 * The OVH-compatible API, mounted once under `/1.0` and once under `/v1`. Authentication and the service-ownership
 * check wrap every route here, as one layer: route code never deals with either.
 */
export async function api(app: App, options: ApiOptions) {
  app.decorateRequest('principal', null as unknown as Principal);

  app.addHook('onRoute', (route) => {
    if (options.hideFromSpec) route.schema = { ...route.schema, hide: true };
    // Documents which routes need a caller; Swagger UI's Authorize then sends the token on them.
    const auth = (route.config as { auth?: string } | undefined)?.auth ?? 'signed';
    if (auth === 'signed')
      route.schema = { ...route.schema, security: [{ oauth2: [] }, { bearerAuth: [] }, { ovhApplication: [] }] };
  });

  // Before validation: a caller who is not authenticated learns nothing, not even that the body is malformed.
  app.addHook('preValidation', async (request) => {
    request.principal = await options.authenticate(request);
    const serviceName = (request.params as { serviceName?: string } | undefined)?.serviceName;
    // A service of another account answers exactly like one that does not exist.
    if (serviceName !== undefined) {
      if (request.principal.anonymous) throw serviceNotFound();
      await app.services.services.requireOwner(serviceName, request.principal.accountId);
    }
  });

  await app.register(authRoutes, { publicUrl: options.publicUrl });
  await app.register(oauth2Routes);
  await app.register(serviceRoutes);
  await app.register(whitelistRoutes);
  await app.register(taskRoutes);
  await app.register(userRoutes);
  await app.register(rightsRoutes);
  await app.register(securityOptionRoutes);
  await app.register(unlockRoutes);
  await app.register(auditRoutes);
  await app.register(allowedNetworkRoutes);
}
