import { actorOf } from '../../http/actor.js';
import { Type } from '@sinclair/typebox';
import {
  Id,
  IdList,
  StringEnum,
  Task,
  TaskStateEnum,
  commonErrors,
  ResetTaskStateBody,
  ChangeExecutionDateBody,
} from '../../http/schemas.js';
import type { App } from '../../http/types.js';

export const AllowedNetwork = Type.Object(
  {
    description: Type.Union([Type.String(), Type.Null()]),
    network: Type.String({ examples: ['203.0.113.0/24'] }),
    networkAccessId: Type.Integer(),
    state: StringEnum(['allowed', 'toDelete', 'toUpdate']),
  },
  {
    $id: 'dedicatedCloud.AllowedNetwork',
    title: 'dedicatedCloud.AllowedNetwork',
    description: 'Network allowed on infrastructure firewall',
  },
);

const Description = Type.String({ maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f]*$' });
const Network = Type.String({ maxLength: 64, description: 'Network name, e.g. 123.100.200.0/32', examples: ['203.0.113.0/24'] });
const Params = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) });
const ItemParams = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }), networkAccessId: Id });
const tags = ['dedicatedCloud.allowedNetwork'];

export default async function allowedNetworkRoutes(app: App) {
  app.addSchema(AllowedNetwork);
  const svc = () => app.services.allowedNetworks;
  const base = '/dedicatedCloud/:serviceName/allowedNetwork';

  app.get(base, {
    schema: {
      tags,
      summary: 'Networks allowed to access the management interface',
      params: Params,
      response: { 200: IdList, ...commonErrors },
    },
    handler: (request) => svc().list(request.params.serviceName),
  });
  app.post(base, {
    schema: {
      tags,
      summary: 'Create a new Allowed network for your dedicatedCloud',
      params: Params,
      body: Type.Object({ network: Network, description: Type.Optional(Description) }, { additionalProperties: false }),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) => svc().add(request.params.serviceName, request.body, actorOf(request)),
  });
  app.get(`${base}/:networkAccessId`, {
    schema: {
      tags,
      summary: 'Get this object properties',
      params: ItemParams,
      response: { 200: Type.Ref(AllowedNetwork), ...commonErrors },
    },
    handler: (request) => svc().get(request.params.serviceName, request.params.networkAccessId),
  });
  app.put(`${base}/:networkAccessId`, {
    schema: {
      tags,
      summary: 'Alter this object properties',
      params: ItemParams,
      // OVH's PUT carries the whole object; the read-only fields are accepted and ignored.
      body: Type.Object({
        network: Type.Optional(Network),
        description: Type.Optional(Type.Union([Description, Type.Null()])),
        networkAccessId: Type.Optional(Type.Integer()),
        state: Type.Optional(StringEnum(['allowed', 'toDelete', 'toUpdate'])),
      }),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      svc().update(request.params.serviceName, request.params.networkAccessId, request.body, actorOf(request)),
  });
  app.delete(`${base}/:networkAccessId`, {
    schema: {
      tags,
      summary: 'Remove this network from your Dedicated Cloud',
      params: ItemParams,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) => svc().remove(request.params.serviceName, request.params.networkAccessId, actorOf(request)),
  });

  // The tasks of one allowed network, as OVH serves them under it.
  const TaskParams = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }), networkAccessId: Id, taskId: Id });
  const tasks = () => app.services.tasks;
  app.get(`${base}/:networkAccessId/task`, {
    schema: {
      tags,
      summary: 'List operations associated to a network allowed on infrastructure firewall',
      params: ItemParams,
      querystring: Type.Object(
        {
          name: Type.Optional(Type.String({ maxLength: 100, description: 'Filter the value of name property (like)' })),
          state: Type.Optional(Type.Ref(TaskStateEnum, { description: 'Filter the value of state property (=)' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: IdList, ...commonErrors },
    },
    handler: async (request) => {
      const { serviceName, networkAccessId } = request.params;
      await svc().get(serviceName, networkAccessId);
      return tasks().list(serviceName, { ...request.query, networkAccessId });
    },
  });
  app.get(`${base}/:networkAccessId/task/:taskId`, {
    schema: { tags, summary: 'Get operation', params: TaskParams, response: { 200: Type.Ref(Task), ...commonErrors } },
    handler: ({ params }) => tasks().get(params.serviceName, params.taskId, { networkAccessId: params.networkAccessId }),
  });
  app.post(`${base}/:networkAccessId/task/:taskId/resetTaskState`, {
    schema: {
      tags,
      summary: 'Relaunch operation currently in error state',
      params: TaskParams,
      body: ResetTaskStateBody,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: ({ params, body }) =>
      tasks().resetTaskState(params.serviceName, params.taskId, body.reason, { networkAccessId: params.networkAccessId }),
  });
  app.post(`${base}/:networkAccessId/task/:taskId/changeMaintenanceExecutionDate`, {
    schema: {
      tags,
      summary: 'Change the execution date of a maintenance operation',
      params: TaskParams,
      body: ChangeExecutionDateBody,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: ({ params, body }) =>
      tasks().changeMaintenanceExecutionDate(params.serviceName, params.taskId, body.executionDate, {
        networkAccessId: params.networkAccessId,
      }),
  });
}
