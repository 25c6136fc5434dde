import { actorOf } from '../../http/actor.js';
import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';
import { OvhError, ServiceNameParams, StringEnum, Task, commonErrors } from '../../http/schemas.js';
import { CAPABILITIES, SERVICE_STATES } from './service.js';
import { iamTagsMatchUntagged } from './iam-tags.js';

const IamMetadata = Type.Object(
  {
    displayName: Type.Union([Type.String(), Type.Null()]),
    id: Type.String({ format: 'uuid' }),
    state: Type.Union([StringEnum(['EXPIRED', 'IN_CREATION', 'OK', 'SUSPENDED']), Type.Null()]),
    tags: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
    urn: Type.String(),
  },
  { description: 'iam.ResourceMetadata: always null here, there is no OVHcloud IAM' },
);

export const DedicatedCloud = Type.Object(
  {
    advancedSecurity: Type.Boolean({ description: 'Advanced security state (see securityOptions)' }),
    bandwidth: Type.String({ description: 'Fixed: none (no network uplink here)' }),
    billingType: StringEnum(['demo', 'monthly']),
    canMigrateToVCD: Type.Boolean(),
    certifiedInterfaceUrl: Type.String({ description: 'The certified interface of the users: /secure/{serviceName}/' }),
    commercialRange: Type.String(),
    description: Type.String(),
    generation: StringEnum(['1.0', '2.0']),
    iam: Type.Union([IamMetadata, Type.Null()]),
    location: Type.String(),
    managementInterface: StringEnum(['azure', 'openstack', 'systemcenter', 'vcloud', 'vcsa', 'vsphere']),
    productReference: StringEnum(['EPCC', 'MBM']),
    serviceName: Type.String(),
    servicePackName: Type.Union([Type.String(), Type.Null()]),
    spla: Type.Boolean(),
    sslV3: Type.Union([Type.Boolean(), Type.Null()], { description: 'Recorded; no listener of this service speaks SSLv3' }),
    state: StringEnum(SERVICE_STATES, { examples: ['delivered'] }),
    userAccessPolicy: StringEnum(['filtered', 'open']),
    userLimitConcurrentSession: Type.Integer(),
    userLogoutPolicy: StringEnum(['first', 'last']),
    userSessionTimeout: Type.Integer({ description: 'Session timeout in seconds, 0 for none' }),
    vScopeUrl: Type.String(),
    version: Type.Object(
      { build: Type.String(), major: Type.String(), minor: Type.String() },
      { description: "dedicatedCloud.Version: this service's version" },
    ),
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
      querystring: Type.Object(
        {
          iamTags: Type.Optional(
            Type.String({
              maxLength: 4096,
              description:
                'Filter resources on IAM tags, as JSON: `{"env":[{"operator":"EQ","value":"prod"}]}`. Services carry no tag here.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Array(Type.String()), ...commonErrors },
    },
    handler: async (request) => {
      const services = await app.services.services.list(request.principal.accountId);
      return request.query.iamTags === undefined || iamTagsMatchUntagged(request.query.iamTags) ? services : [];
    },
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
            sslV3: Type.Optional(
              Type.Boolean({ description: 'Recorded and reported (OVH advises against it); no listener here speaks SSLv3' }),
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

  app.get('/dedicatedCloud/:serviceName/capabilities', {
    schema: {
      tags: ['dedicatedCloud'],
      summary: 'Get available features',
      params: ServiceNameParams,
      response: {
        200: Type.Object(
          {
            addRessourceRightStatus: FeatureStatus,
            backupStatus: FeatureStatus,
            canAddUser: Type.Boolean(),
            fullAdminRoUserStatus: FeatureStatus,
            nexus1000vStatus: FeatureStatus,
            upgradable: Type.Boolean(),
            userAccessPolicyStatus: FeatureStatus,
          },
          { title: 'dedicatedCloud.Capabilities', additionalProperties: false },
        ),
        ...commonErrors,
      },
    },
    handler: async () => CAPABILITIES,
  });
}

const FeatureStatus = StringEnum(['active', 'comingSoon', 'no']);
