import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { badRequest } from '../../http/errors.js';
import { StringEnum } from '../../http/schemas.js';
import type { App } from '../../http/types.js';
import { RULE_METHODS, RULE_PATH_PATTERN } from './access-rules.js';

const tags = ['auth'];

const AccessRule = Type.Object(
  {
    method: StringEnum(RULE_METHODS),
    path: Type.String({ minLength: 1, maxLength: 512, pattern: RULE_PATH_PATTERN, examples: ['/dedicatedCloud/*'] }),
  },
  { additionalProperties: false },
);

export const ApiCredentialRequest = Type.Object(
  {
    consumerKey: Type.String(),
    state: StringEnum(['expired', 'pendingValidation', 'refused', 'validated']),
    validationUrl: Type.String(),
  },
  { $id: 'auth.ApiCredentialRequest', title: 'auth.ApiCredentialRequest' },
);

export const ApiCredential = Type.Object(
  {
    allowedIPs: Type.Union([Type.Array(Type.String()), Type.Null()]),
    applicationId: Type.Integer(),
    creation: Type.String({ format: 'date-time' }),
    credentialId: Type.Integer(),
    expiration: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastUse: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    ovhSupport: Type.Boolean(),
    rules: Type.Array(AccessRule),
    status: StringEnum(['expired', 'pendingValidation', 'refused', 'validated']),
  },
  { $id: 'auth.ApiCredential', title: 'auth.ApiCredential' },
);

// Authentication errors carry `errorCode` and `httpCode`; validation and other business errors only `class` and
// `message`. Both go through this schema, so the first two are optional (required, they made every 400 a 500).
const AuthError = Type.Object({
  class: Type.String(),
  errorCode: Type.Optional(Type.String()),
  httpCode: Type.Optional(Type.String()),
  message: Type.String(),
});

/** The base URL the caller reached us at: PUBLIC_URL when set, else the request's own scheme and Host. */
function baseUrlOf(request: FastifyRequest, publicUrl: string | undefined): string {
  return publicUrl ?? `${request.protocol}://${request.host}`;
}

/** OVH's `/auth` routes, mounted with the rest of the API under `/1.0` and `/v1`. */
export default async function authRoutes(app: App, options: { publicUrl: string | undefined }) {
  app.addSchema(ApiCredentialRequest);
  app.addSchema(ApiCredential);

  app.get('/auth/time', {
    config: { auth: 'none' },
    schema: { tags, summary: 'Get the current time of the OVH servers, since UNIX epoch', response: { 200: Type.Integer() } },
    handler: async () => Math.floor(app.clock.now().getTime() / 1000),
  });

  app.post('/auth/credential', {
    config: { auth: 'application', rateLimit: { max: 30, timeWindow: 60_000 } },
    schema: {
      tags,
      summary: 'Request a new credential for your application',
      description: 'Only `X-Ovh-Application` is needed. The account holder then validates the credential at `validationUrl`.',
      body: Type.Object(
        {
          accessRules: Type.Array(AccessRule, { minItems: 1, maxItems: 100 }),
          // null first: with AJV's type coercion a null tried against the string or array branch first became `""`
          // or `[""]`, and python-ovh, which sends both as null, was refused.
          redirection: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2048 })])),
          allowedIPs: Type.Optional(Type.Union([Type.Null(), Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100 })])),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(ApiCredentialRequest), 400: AuthError, 403: AuthError },
    },
    handler: async (request) => {
      const applicationKey = request.headers['x-ovh-application'];
      return app.services.auth.requestCredential(
        typeof applicationKey === 'string' ? applicationKey : undefined,
        request.body,
        baseUrlOf(request, options.publicUrl),
      );
    },
  });

  app.get('/auth/currentCredential', {
    schema: {
      tags,
      summary: 'Get the current credential details',
      response: { 200: Type.Ref(ApiCredential), 400: AuthError, 403: AuthError },
    },
    handler: async (request) => {
      const id = request.principal.credentialId;
      if (!id) throw badRequest('This call needs a signed request (a consumer key), not a bearer token');
      return app.services.auth.describeCredential(id);
    },
  });

  app.get('/auth/details', {
    schema: {
      tags,
      summary: 'Details about the current authentication',
      description:
        "A signed call: method `account`, its consumer key's routes; a bearer token: method `oauth2_client_credentials`, every route of the account.",
      response: {
        200: Type.Object(
          {
            account: Type.String({ description: 'Customer identifier (the account login)' }),
            allowedRoutes: Type.Union(
              [
                Type.Array(
                  Type.Object(
                    { method: StringEnum(['DELETE', 'GET', 'PATCH', 'POST', 'PUT']), path: Type.String() },
                    { additionalProperties: false },
                  ),
                ),
                Type.Null(),
              ],
              { description: 'Allowed API routes, null means everything' },
            ),
            description: Type.Union([Type.String(), Type.Null()]),
            identities: Type.Array(Type.String()),
            method: StringEnum(['account', 'oauth2_client_credentials', 'provider', 'user']),
            roles: Type.Union([Type.Array(Type.String()), Type.Null()]),
            user: Type.Union([Type.String(), Type.Null()]),
          },
          { title: 'auth.Details', additionalProperties: false },
        ),
        400: AuthError,
        403: AuthError,
      },
    },
    handler: async (request) => {
      const { credentialId, login, bearerTokenHash } = request.principal;
      const account = login ?? 'operator';
      const credential = credentialId ? await app.services.auth.describeCredential(credentialId) : undefined;
      return {
        account,
        allowedRoutes: credential ? credential.rules : null,
        description: credential
          ? `consumer key ${credential.credentialId} of application ${credential.applicationId}`
          : bearerTokenHash
            ? 'OAuth2 client credentials token'
            : null,
        identities: [`urn:v1:eu:identity:account:${account}`],
        method: bearerTokenHash && !credential ? ('oauth2_client_credentials' as const) : ('account' as const),
        roles: null,
        user: null,
      };
    },
  });

  app.post('/auth/logout', {
    schema: {
      tags,
      summary: 'Expire the current credential',
      description: 'A signed call expires its consumer key; a call with a bearer token revokes that token.',
      response: { 200: Type.Null(), 400: AuthError, 403: AuthError },
    },
    handler: async (request) => {
      const { credentialId, bearerTokenHash } = request.principal;
      if (credentialId) await app.services.auth.logout(credentialId);
      else if (bearerTokenHash) await app.services.auth.revokeBearer(bearerTokenHash);
      else throw badRequest('This call needs a consumer key or a bearer token to expire');
      return null;
    },
  });
}
