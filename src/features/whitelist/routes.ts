import { actorOf } from '../../http/actor.js';
import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';
import { Id, IdList, OvhError, StringEnum, Task, commonErrors } from '../../http/schemas.js';

export const TwoFAWhitelistStateEnum = StringEnum(['enabled', 'enabling', 'error', 'migrating', 'removed', 'removing'], {
  $id: 'dedicatedCloud.TwoFAWhitelistStateEnum',
  title: 'dedicatedCloud.TwoFAWhitelistStateEnum',
});

export const TwoFAWhitelist = Type.Object(
  {
    id: Type.Integer({ description: 'Id of the trusted IP' }),
    ip: Type.String({ description: 'IP address of the remote service', examples: ['203.0.113.0'] }),
    cidrNetmask: Type.Integer({ description: 'IP netmask (CIDR notation) of the remote service', examples: [24] }),
    description: Type.String({ description: 'Description of the trusted IP' }),
    state: Type.Ref(TwoFAWhitelistStateEnum),
  },
  {
    $id: 'dedicatedCloud.twoFAWhitelist',
    title: 'dedicatedCloud.twoFAWhitelist',
    description: 'Two factor authentication whitelisted network',
    additionalProperties: false,
  },
);

// Printable text only: a description ends up in logs and consoles.
const Description = (description: string) =>
  Type.String({ maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f]*$', description });

const Params = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: 63, description: 'Domain of the service' }),
});
const EntryParams = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: 63, description: 'Domain of the service' }),
  id: { ...Id, description: 'Id of the trusted IP' },
});

const tags = ['dedicatedCloud.twoFAWhitelist'];

/** The five endpoints of the 2FA bypass list, exactly OVH's. */
export default async function whitelistRoutes(app: App) {
  app.addSchema(TwoFAWhitelistStateEnum);
  app.addSchema(TwoFAWhitelist);

  app.get('/dedicatedCloud/:serviceName/twoFAWhitelist', {
    schema: {
      tags,
      summary: 'List the dedicatedCloud.twoFAWhitelist objects',
      description: 'Ids of the entries that may skip 2FA; removed entries are not listed.',
      params: Params,
      response: { 200: IdList, 404: Type.Ref(OvhError) },
    },
    handler: (request) => app.services.whitelist.list(request.params.serviceName),
  });

  app.post('/dedicatedCloud/:serviceName/twoFAWhitelist', {
    schema: {
      tags,
      summary: 'Add a whitelisted ip on 2FA authentication',
      params: Params,
      body: Type.Object(
        {
          ip: Type.String({
            maxLength: 64,
            description: 'IP address or network of the remote service, e.g. 123.100.200.0 or 123.100.200.0/24 (IPv6 too)',
            examples: ['203.0.113.0/24'],
          }),
          description: Description('Description of the exception'),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) => app.services.whitelist.add(request.params.serviceName, request.body, actorOf(request)),
  });

  app.get('/dedicatedCloud/:serviceName/twoFAWhitelist/:id', {
    schema: {
      tags,
      summary: 'Get this object properties',
      params: EntryParams,
      response: { 200: Type.Ref(TwoFAWhitelist), ...commonErrors },
    },
    handler: (request) => app.services.whitelist.get(request.params.serviceName, request.params.id),
  });

  app.delete('/dedicatedCloud/:serviceName/twoFAWhitelist/:id', {
    schema: {
      tags,
      summary: 'Remove a whitelisted ip on 2FA authentication',
      params: EntryParams,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) => app.services.whitelist.remove(request.params.serviceName, request.params.id, actorOf(request)),
  });

  app.post('/dedicatedCloud/:serviceName/twoFAWhitelist/:id/changeProperties', {
    schema: {
      tags,
      summary: 'Change Two Factor Authentication whitelist properties',
      params: EntryParams,
      body: Type.Optional(
        Type.Object(
          { description: Type.Optional(Description('Description of your whitelist')) },
          { additionalProperties: false },
        ),
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.whitelist.changeProperties(
        request.params.serviceName,
        request.params.id,
        request.body ?? {},
        actorOf(request),
      ),
  });
}
