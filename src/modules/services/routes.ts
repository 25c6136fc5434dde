import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';
import { OvhError, ServiceNameParams, StringEnum } from '../../http/schemas.js';

export const DedicatedCloud = Type.Object(
  {
    serviceName: Type.String(),
    description: Type.String(),
    state: Type.String({ examples: ['delivered'] }),
    advancedSecurity: Type.Boolean({ description: 'Advanced security state' }),
    userAccessPolicy: StringEnum(['filtered', 'open']),
    userLimitConcurrentSession: Type.Integer(),
    userLogoutPolicy: StringEnum(['first', 'last']),
    userSessionTimeout: Type.Integer({ description: 'Session timeout in seconds, 0 for none' }),
    certifiedInterfaceUrl: Type.String(),
    webInterfaceUrl: Type.String(),
    twoFAState: StringEnum(['disabled', 'enabled'], {
      description: 'Extension: `enabled` once any user of the service has set up 2FA; every user then needs it',
    }),
  },
  { $id: 'dedicatedCloud.dedicatedCloud', title: 'dedicatedCloud.dedicatedCloud', additionalProperties: false },
);

export default async function serviceRoutes(app: App) {
  app.addSchema(DedicatedCloud);

  app.get('/dedicatedCloud', {
    schema: {
      tags: ['dedicatedCloud'],
      summary: 'List the services of your account',
      response: { 200: Type.Array(Type.String()) },
    },
    handler: (request) => app.services.services.list(request.principal.accountId),
  });

  app.get('/dedicatedCloud/:serviceName', {
    schema: {
      tags: ['dedicatedCloud'],
      summary: 'Get this object properties',
      params: ServiceNameParams,
      response: { 200: Type.Ref(DedicatedCloud), 404: Type.Ref(OvhError) },
    },
    handler: async (request) => {
      const { services } = app.services;
      return services.toDto(await services.require(request.params.serviceName, request.principal.accountId));
    },
  });
}
