import { Type } from '@sinclair/typebox';
import { actorOf } from '../../http/actor.js';
import { ServiceNameParams, StringEnum, Task, commonErrors } from '../../http/schemas.js';
import type { App } from '../../http/types.js';
import { SECURITY_OPTIONS, SECURITY_OPTION_ERRORS, SECURITY_OPTION_STATES } from './api.js';

const Option = StringEnum(SECURITY_OPTIONS, { description: 'dedicatedCloud.securityOption.SecurityOptionEnum' });
const State = StringEnum(SECURITY_OPTION_STATES, { description: 'dedicatedCloud.securityOption.StateEnum' });
const Entry = Type.Object(
  {
    compatible: Type.Boolean({ description: 'Whether the option can be enabled on this service' }),
    description: Type.String(),
    enabled: Type.Boolean(),
    name: Option,
    reason: Type.Union([
      Type.Object({ code: StringEnum(SECURITY_OPTION_ERRORS), message: Type.String() }, { additionalProperties: false }),
      Type.Null(),
    ]),
    state: State,
  },
  { title: 'dedicatedCloud.securityOption.CompatibilityMatrixEntry', additionalProperties: false },
);
const tags = ['dedicatedCloud.securityOptions'];
const base = '/dedicatedCloud/:serviceName/securityOptions';

/** `securityOptions`: advancedSecurity and the options that mean something here, read from the service. */
export default async function securityOptionRoutes(app: App) {
  const svc = () => app.services.securityOptions;

  app.get(base, {
    schema: {
      tags,
      summary: 'Get security options',
      description:
        'The state of advancedSecurity: `delivered` when on, `creating` while its enabling task runs, `pending` otherwise.',
      params: ServiceNameParams,
      response: {
        200: Type.Object({ state: State }, { title: 'dedicatedCloud.SecurityOption', additionalProperties: false }),
        ...commonErrors,
      },
    },
    handler: (request) => svc().get(request.params.serviceName),
  });
  app.get(`${base}/compatibilityMatrix`, {
    schema: {
      tags,
      summary: 'Get security options compatibility matrix',
      params: ServiceNameParams,
      querystring: Type.Object(
        {
          showIncompatible: Type.Optional(Type.Boolean({ description: 'Show incompatible security options (default true)' })),
          showInternal: Type.Optional(
            Type.Boolean({ description: "Show the options of OVH's infrastructure, which this service does not run" }),
          ),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Array(Entry), ...commonErrors },
    },
    handler: (request) =>
      svc().compatibilityMatrix(
        request.params.serviceName,
        request.query.showIncompatible ?? true,
        request.query.showInternal ?? false,
      ),
  });
  app.get(`${base}/dependenciesTree`, {
    schema: {
      tags,
      summary: 'Get security options dependencies tree',
      params: ServiceNameParams,
      querystring: Type.Object({ option: { ...Option, description: 'Target security option' } }, { additionalProperties: false }),
      response: {
        200: Type.Object(
          { conflicts: Type.Array(Option), depends: Type.Array(Option), requires: Type.Array(Option) },
          { title: 'dedicatedCloud.securityOption.DependenciesTree', additionalProperties: false },
        ),
        ...commonErrors,
      },
    },
    handler: async (request) => svc().dependenciesTree(request.query.option),
  });
  app.get(`${base}/pendingOptions`, {
    schema: {
      tags,
      summary: 'Get pending activation security options',
      params: ServiceNameParams,
      response: { 200: Type.Array(Option), ...commonErrors },
    },
    handler: (request) => svc().pendingOptions(request.params.serviceName),
  });
  app.post(`${base}/resumePendingEnabling`, {
    schema: {
      tags,
      summary: 'Retry pending security option activation',
      description: 'Enables a pending option (advancedSecurity) through a task; answers the task already doing it, if any.',
      params: ServiceNameParams,
      body: Type.Object(
        { option: { ...Option, description: 'Security option to resume enabling' } },
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) => svc().resumePendingEnabling(request.params.serviceName, request.body.option, actorOf(request)),
  });
}
