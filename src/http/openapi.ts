import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';

/** The OpenAPI document: named components come from the `$id` of each shared schema. */
export function openApiOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'pcc-2fa',
        description:
          "OVH-compatible `dedicatedCloud` API for Hosted Private Cloud two-factor authentication. Every route is also served under `/v1` (same handlers), as OVH's clients expect.",
        version: '1.0',
      },
      components: {
        securitySchemes: {
          oauth2: {
            type: 'oauth2',
            description:
              'Client credentials: `npm run cli -- oauth-client create --account <login>` prints a client id and secret (the first start of the embedded database makes one).',
            flows: { clientCredentials: { tokenUrl: '/1.0/auth/oauth2/token', scopes: {} } },
          },
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'A token from POST /1.0/auth/oauth2/token' },
          sessionToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'Certified interface (/secure): the sessionToken from POST /secure/{serviceName}/session',
          },
          ovhApplication: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Ovh-Application',
            description:
              "OVH signed calls (X-Ovh-Application, X-Ovh-Consumer, X-Ovh-Timestamp, X-Ovh-Signature) as OVH's official clients send them; Swagger UI cannot compute the signature, use OAuth2 here.",
          },
        },
      },
      tags: [
        { name: 'dedicatedCloud', description: 'Services of your account' },
        { name: 'dedicatedCloud.twoFAWhitelist', description: 'Networks that may skip 2FA' },
        { name: 'dedicatedCloud.task', description: 'Operations and their progress' },
        { name: 'dedicatedCloud.user', description: 'Users of a service' },
        { name: 'secure', description: 'Certified interface: a user logs in, renews credentials and 2FA, validates operations' },
        { name: 'auth', description: "OVH's authentication: time, consumer keys, OAuth2 tokens" },
        { name: 'operations', description: 'Health checks' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  };
}
