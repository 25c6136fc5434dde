import { Type } from '@sinclair/typebox';
import { OBJECT_RIGHT_TYPES } from '../../db/types.js';
import { actorOf } from '../../http/actor.js';
import { Id, IdList, StringEnum, Task, commonErrors } from '../../http/schemas.js';
import type { App } from '../../http/types.js';
import { NetworkRoleEnum, RightEnum, VmNetworkRoleEnum } from './routes.js';

export const Right = Type.Object(
  {
    canAddRessource: Type.Boolean({ description: 'Determine if the user can add ressources in your VMware on OVHcloud' }),
    datacenterId: Type.Integer({ description: 'Read-only' }),
    networkRole: NetworkRoleEnum,
    right: RightEnum,
    rightId: Type.Integer({ description: 'Read-only' }),
    vmNetworkRole: VmNetworkRoleEnum,
  },
  {
    $id: 'dedicatedCloud.Right',
    title: 'dedicatedCloud.Right',
    description: 'User datacenter right',
    additionalProperties: false,
  },
);

const ObjectRightType = StringEnum(OBJECT_RIGHT_TYPES, { description: 'dedicatedCloud.right.UserObjectRightTypeEnum' });
export const ObjectRight = Type.Object(
  {
    name: Type.String({ description: 'Name of the object (here its MoRef: this service does not run vSphere)' }),
    objectRightId: Type.Integer(),
    propagate: Type.Boolean({ description: 'Right propagation on children objects' }),
    right: RightEnum,
    type: ObjectRightType,
    vmwareObjectId: Type.String({ description: 'The VMware MoRef of the object' }),
  },
  {
    $id: 'dedicatedCloud.ObjectRight',
    title: 'dedicatedCloud.ObjectRight',
    description: 'User object right',
    additionalProperties: false,
  },
);

const ServiceName = Type.String({ minLength: 1, maxLength: 63 });
const UserParams = Type.Object({ serviceName: ServiceName, userId: Id });
const RightParams = Type.Object({ serviceName: ServiceName, userId: Id, rightId: Id });
const ObjectRightParams = Type.Object({ serviceName: ServiceName, userId: Id, objectRightId: Id });
const tags = ['dedicatedCloud.user'];
const base = '/dedicatedCloud/:serviceName/user/:userId';

/** A user's datacenter rights and object rights (`…/user/{userId}/right`, `…/objectRight`). */
export default async function rightsRoutes(app: App) {
  app.addSchema(Right);
  app.addSchema(ObjectRight);
  const rights = () => app.services.rights;

  app.get(`${base}/right`, {
    schema: { tags, summary: 'List user datacenter rights', params: UserParams, response: { 200: IdList, ...commonErrors } },
    handler: (request) => rights().listRights(request.params.serviceName, request.params.userId),
  });
  app.get(`${base}/right/:rightId`, {
    schema: {
      tags,
      summary: 'Get user datacenter right',
      params: RightParams,
      response: { 200: Type.Ref(Right), ...commonErrors },
    },
    handler: (request) => rights().getRight(request.params.serviceName, request.params.userId, request.params.rightId),
  });
  app.put(`${base}/right/:rightId`, {
    schema: {
      tags,
      summary: 'Update user datacenter right',
      description: 'The body is a `dedicatedCloud.Right`; its read-only fields (rightId, datacenterId) are ignored.',
      params: RightParams,
      body: Type.Partial(
        Type.Object({
          canAddRessource: Type.Boolean(),
          datacenterId: Id,
          networkRole: NetworkRoleEnum,
          right: RightEnum,
          rightId: Id,
          vmNetworkRole: VmNetworkRoleEnum,
        }),
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      rights().changeRight(
        request.params.serviceName,
        request.params.userId,
        request.params.rightId,
        request.body,
        actorOf(request),
      ),
  });

  app.get(`${base}/objectRight`, {
    schema: { tags, summary: 'List user object rights', params: UserParams, response: { 200: IdList, ...commonErrors } },
    handler: (request) => rights().listObjectRights(request.params.serviceName, request.params.userId),
  });
  app.post(`${base}/objectRight`, {
    schema: {
      tags,
      summary: 'Create user object right',
      params: UserParams,
      body: Type.Object(
        {
          right: { ...RightEnum, description: 'User access on the VMware object' },
          type: { ...ObjectRightType, description: 'Type of the object' },
          vmwareObjectId: Type.String({
            minLength: 1,
            maxLength: 255,
            pattern: '^[A-Za-z0-9._:-]+$',
            description: 'The VMware MoRef of the object',
            examples: ['vm-1234'],
          }),
          propagate: Type.Optional(Type.Boolean({ description: 'Right propagation on children objects' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      rights().addObjectRight(request.params.serviceName, request.params.userId, request.body, actorOf(request)),
  });
  app.get(`${base}/objectRight/:objectRightId`, {
    schema: {
      tags,
      summary: 'Get user object right',
      params: ObjectRightParams,
      response: { 200: Type.Ref(ObjectRight), ...commonErrors },
    },
    handler: (request) =>
      rights().getObjectRight(request.params.serviceName, request.params.userId, request.params.objectRightId),
  });
  app.delete(`${base}/objectRight/:objectRightId`, {
    schema: {
      tags,
      summary: 'Remove user object right',
      params: ObjectRightParams,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      rights().removeObjectRight(
        request.params.serviceName,
        request.params.userId,
        request.params.objectRightId,
        actorOf(request),
      ),
  });
}
