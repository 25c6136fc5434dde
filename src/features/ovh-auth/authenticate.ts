import type { FastifyRequest } from 'fastify';
import type { Authenticate, Principal } from '../../http/types.js';
import { authErrors } from '../../http/ovh-auth-error.js';
import type { AuthService } from './service.js';

/** How a route is reached: most need a signed call or a bearer token; a few OVH routes need less. */
export type RouteAuth = 'signed' | 'application' | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** The path below the API prefix (`/1.0` or `/v1`), without query string. */
export function apiPathOf(rawUrl: string): string {
  const path = rawUrl.split('?')[0] ?? '';
  return path.replace(/^\/(1\.0|v1)(?=\/)/, '');
}

/**
 * The path the router dispatched, below the API prefix: the route's pattern with its parameters as the router read
 * them. Access rules are matched against this, never against the raw target, so that nothing the router reads
 * differently (a `#`, an encoded character) can make a rule see one path while the route serves another.
 */
export function dispatchedApiPath(routeUrl: string, params: unknown): string {
  const values = (params ?? {}) as Record<string, unknown>;
  return apiPathOf(routeUrl.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => String(values[name] ?? '')));
}

/**
 * The authentication layer of the OVH-compatible API: an OAuth2 bearer token, or OVH's signature. Routes marked
 * `auth: 'none'` (`/auth/time`) or `'application'` (`/auth/credential`, which checks the key itself) pass through.
 */
export function ovhAuthenticator(auth: AuthService): Authenticate {
  return async (request): Promise<Principal> => {
    const mode = request.routeOptions.config.auth ?? 'signed';
    if (mode !== 'signed') return { accountId: null, login: null, credentialId: null, anonymous: true };
    const authorization = header(request, 'authorization');
    if (authorization !== undefined) {
      const match = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim());
      if (!match?.[1]) throw authErrors.invalidToken();
      return auth.verifyBearer(match[1]);
    }
    const rawUrl = request.raw.url ?? request.url;
    return auth.verifySignedCall({
      applicationKey: header(request, 'x-ovh-application'),
      consumerKey: header(request, 'x-ovh-consumer'),
      timestamp: header(request, 'x-ovh-timestamp'),
      signature: header(request, 'x-ovh-signature'),
      method: request.method.toUpperCase(),
      protocol: request.protocol,
      host: header(request, 'host'),
      rawUrl,
      apiPath: dispatchedApiPath(request.routeOptions.url ?? '', request.params),
      body: request.rawBody ?? '',
      ip: request.clientIp,
    });
  };
}
