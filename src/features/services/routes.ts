import { actorOf } from '../../http/actor.js';
import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';
import { OvhError, ServiceNameParams, StringEnum, Task, commonErrors } from '../../http/schemas.js';

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

  app.post('/dedicatedCloud/:serviceName/changeProperties', {
    schema: {
      tags: ['dedicatedCloud'],
      summary: 'Update this service properties',
      params: ServiceNameParams,
      body: Type.Optional(
        Type.Object(
          {
            description: Type.Optional(Type.String({ maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
            userAccessPolicy: Type.Optional(
              StringEnum(['filtered', 'open'], { description: 'Open to each IP, or filtered by allowedNetwork' }),
            ),
            userLimitConcurrentSession: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: '0 for no limit' })),
            userLogoutPolicy: Type.Optional(
              StringEnum(['first', 'last'], { description: 'Which session ends when the limit is reached' }),
            ),
            userSessionTimeout: Type.Optional(
              Type.Integer({ minimum: 0, maximum: 86_400, description: 'Idle timeout in seconds, 0 for none' }),
            ),
          },
          { additionalProperties: false },
        ),
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.services.changeProperties(request.params.serviceName, request.body ?? {}, actorOf(request)),
  });
}
