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
      tags: [
        { name: 'dedicatedCloud', description: 'Services of your account' },
        { name: 'dedicatedCloud.twoFAWhitelist', description: 'Networks that may skip 2FA' },
        { name: 'dedicatedCloud.task', description: 'Operations and their progress' },
        { name: 'operations', description: 'Health checks' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  };
}
