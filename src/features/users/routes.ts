import { actorOf } from '../../http/actor.js';
import { Type } from '@sinclair/typebox';
import { ACCESS_RIGHTS, NETWORK_ROLES, VM_NETWORK_ROLES } from '../../db/types.js';
import {
  DateTime,
  Id,
  IdList,
  OvhError,
  StringEnum,
  Task,
  TaskStateEnum,
  commonErrors,
  ResetTaskStateBody,
  ChangeExecutionDateBody,
} from '../../http/schemas.js';
import { PHONE_NUMBER_PATTERN } from './phone-number.js';
import type { App } from '../../http/types.js';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../http/errors.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(s: T) => Type.Union([s, Type.Null()]);

export const User = Type.Object(
  {
    activationState: Type.Union([
      StringEnum(['disabled', 'disabling', 'enabled', 'enabling', 'toDisable', 'toEnable']),
      Type.Null(),
    ]),
    activeDirectoryId: Type.Union([Type.Integer(), Type.Null()]),
    activeDirectoryType: Type.Union([StringEnum(['group', 'user']), Type.Null()]),
    canManageIpFailOvers: Type.Boolean(),
    canManageNetwork: Type.Boolean(),
    canManageRights: Type.Boolean(),
    email: Nullable(Type.String()),
    encryptionRight: Type.Boolean(),
    firstName: Nullable(Type.String()),
    fullAdminRo: Type.Boolean(),
    identityProviderId: Type.Union([Type.Integer(), Type.Null()]),
    identityProviderType: Type.Union([StringEnum(['federation', 'iam']), Type.Null()]),
    isEnableManageable: Type.Boolean(),
    isTokenValidator: Type.Boolean({
      description: 'Defines if the user can confirm security tokens (if a compatible option is enabled)',
    }),
    lastName: Nullable(Type.String()),
    login: Type.String(),
    name: Type.String(),
    nsxRight: Type.Boolean(),
    phoneNumber: Nullable(Type.String()),
    receiveAlerts: Type.Boolean(),
    state: StringEnum(['creating', 'deleting', 'delivered', 'error']),
    type: Type.Union([StringEnum(['group', 'user']), Type.Null()]),
    userId: Type.Integer(),
    twoFactor: Type.Object(
      { state: StringEnum(['none', 'enabled']), enabledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]) },
      { description: 'Extension: whether the user has set up 2FA' },
    ),
  },
  { $id: 'dedicatedCloud.User', title: 'dedicatedCloud.User', additionalProperties: false },
);

export const PasswordPolicy = Type.Object(
  {
    deniedChars: Type.Array(Type.String()),
    digitMandatory: Type.Boolean(),
    historyCheck: Type.Integer(),
    letterMandatory: Type.Boolean(),
    lowercaseLetterMandatory: Type.Boolean(),
    maxLength: Type.Integer(),
    minLength: Type.Integer(),
    specialMandatory: Type.Boolean({ description: '\\W or _' }),
    uppercaseLetterMandatory: Type.Boolean(),
    validityPeriod: Type.Integer({ description: 'days, 0 for none' }),
  },
  { $id: 'dedicatedCloud.passwordPolicy', title: 'dedicatedCloud.passwordPolicy' },
);

/** International form, `+<country code>.<number>` as OVH writes it, or without the dot; stored and answered dotted. */
const PhoneNumber = Type.String({
  pattern: PHONE_NUMBER_PATTERN,
  examples: ['+33.612345678', '+33612345678'],
  description: 'Mobile phone number of the user in international format (+prefix.number); answered in that form',
});
const Email = Type.String({ maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' });
const Text = Type.String({ maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$' });
const Params = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) });
const UserParams = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }), userId: Id });
const TaskParams = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }), userId: Id, taskId: Id });
export const RightEnum = StringEnum(ACCESS_RIGHTS, { description: 'dedicatedCloud.right.RightEnum' });
export const NetworkRoleEnum = StringEnum(NETWORK_ROLES, { description: 'dedicatedCloud.right.NetworkRoleEnum' });
export const VmNetworkRoleEnum = StringEnum(VM_NETWORK_ROLES, { description: 'dedicatedCloud.right.VmNetworkRoleEnum' });
const tags = ['dedicatedCloud.user'];

export default async function userRoutes(app: App) {
  app.addSchema(User);
  app.addSchema(PasswordPolicy);
  const users = () => app.services.users;
  /**
   * A user created or a password changed hashes a password (argon2id up to six times, with the history's check):
   * charged to the calling account's budget first, 429 when it is spent. An operator's call (no account) is not.
   */
  const spendHashing = (request: FastifyRequest) => {
    const { accountId } = request.principal;
    if (accountId === null) return;
    const waitMs = app.services.hashingBudget.take(String(accountId));
    if (waitMs > 0)
      throw new ApiError(
        429,
        'Client::TooManyRequests',
        `Too many users created or passwords changed by this account: retry in ${Math.ceil(waitMs / 1000)} s`,
      );
  };

  app.get('/dedicatedCloud/:serviceName/passwordPolicy', {
    schema: {
      tags: ['dedicatedCloud'],
      summary: 'Get the password policy of the users',
      params: Params,
      response: { 200: Type.Ref(PasswordPolicy), ...commonErrors },
    },
    handler: (request) => users().passwordPolicy(request.params.serviceName),
  });

  app.get('/dedicatedCloud/:serviceName/user', {
    schema: {
      tags,
      summary: 'Dedicated Cloud users',
      params: Params,
      querystring: Type.Object(
        { name: Type.Optional(Type.String({ maxLength: 100, description: 'Filter the value of name property (like)' })) },
        { additionalProperties: false },
      ),
      response: { 200: IdList, ...commonErrors },
    },
    handler: (request) => users().list(request.params.serviceName, request.query.name),
  });

  app.post('/dedicatedCloud/:serviceName/user', {
    schema: {
      tags,
      summary: 'Create a new User',
      description: 'With advancedSecurity and a token validator to ask, the task waits for operation validation.',
      params: Params,
      body: Type.Object(
        {
          name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$', description: 'Name of the user (login)' }),
          password: Type.Optional(
            Type.String({
              maxLength: 256,
              description: 'Must fit the password policy; if empty, a random password is generated and sent by e-mail',
            }),
          ),
          email: Type.Optional(Email),
          phoneNumber: Type.Optional(PhoneNumber),
          tokenValidator: Type.Optional(Type.Boolean()),
          firstName: Type.Optional(Text),
          lastName: Type.Optional(Text),
          canManageRights: Type.Optional(Type.Boolean()),
          encryptionRight: Type.Optional(Type.Boolean()),
          nsxRight: Type.Optional(Type.Boolean()),
          receiveAlerts: Type.Optional(Type.Boolean()),
          right: Type.Optional({
            ...RightEnum,
            description: 'Access of the user in every datacenter of the service (default disabled)',
          }),
          canAddRessource: Type.Optional(
            Type.Boolean({ description: 'Whether the user may add resources in his datacenters (default no)' }),
          ),
          networkRole: Type.Optional({
            ...NetworkRoleEnum,
            description: 'What the user may do on the v(x)Lans (default noAccess)',
          }),
          vmNetworkRole: Type.Optional({
            ...VmNetworkRoleEnum,
            description: 'What the user may do on the VM Network (default noAccess)',
          }),
          expirationDate: Type.Optional({
            ...DateTime,
            description: 'Date of removal of the user: once it passes he is disabled and can no longer log in',
          }),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(Task), ...commonErrors, 409: Type.Ref(OvhError) },
    },
    handler: (request) => {
      spendHashing(request);
      return users().create(request.params.serviceName, request.body, actorOf(request));
    },
  });

  app.get('/dedicatedCloud/:serviceName/user/:userId', {
    schema: {
      tags,
      summary: 'Get this object properties',
      params: UserParams,
      response: { 200: Type.Ref(User), ...commonErrors },
    },
    handler: (request) => users().get(request.params.serviceName, request.params.userId),
  });

  app.delete('/dedicatedCloud/:serviceName/user/:userId', {
    schema: {
      tags,
      summary: 'Remove a given user',
      params: UserParams,
      response: { 200: Type.Ref(Task), ...commonErrors, 409: Type.Ref(OvhError) },
    },
    handler: (request) => users().remove(request.params.serviceName, request.params.userId, actorOf(request)),
  });

  app.post('/dedicatedCloud/:serviceName/user/:userId/changeProperties', {
    schema: {
      tags,
      summary: 'Change Private Cloud user properties',
      params: UserParams,
      body: Type.Optional(
        Type.Object(
          {
            canManageIpFailOvers: Type.Optional(Type.Boolean()),
            canManageNetwork: Type.Optional(Type.Boolean()),
            canManageRights: Type.Optional(Type.Boolean()),
            encryptionRight: Type.Optional(Type.Boolean()),
            fullAdminRo: Type.Optional(Type.Boolean()),
            nsxRight: Type.Optional(Type.Boolean()),
            receiveAlerts: Type.Optional(Type.Boolean()),
            tokenValidator: Type.Optional(Type.Boolean()),
            email: Type.Optional(Email),
            firstName: Type.Optional(Text),
            lastName: Type.Optional(Text),
            phoneNumber: Type.Optional(PhoneNumber),
          },
          { additionalProperties: false },
        ),
      ),
      response: { 200: Type.Ref(Task), ...commonErrors, 409: Type.Ref(OvhError) },
    },
    handler: (request) =>
      users().changeProperties(request.params.serviceName, request.params.userId, request.body ?? {}, actorOf(request)),
  });

  app.post('/dedicatedCloud/:serviceName/user/:userId/changePassword', {
    schema: {
      tags,
      summary: 'Change Private Cloud user password',
      params: UserParams,
      body: Type.Optional(
        Type.Object({ password: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false }),
      ),
      response: { 200: Type.Ref(Task), ...commonErrors, 409: Type.Ref(OvhError) },
    },
    handler: (request) => {
      spendHashing(request);
      return users().changePassword(request.params.serviceName, request.params.userId, request.body?.password, actorOf(request));
    },
  });

  for (const [verb, enable] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    app.post(`/dedicatedCloud/:serviceName/user/:userId/${verb}`, {
      schema: {
        tags,
        summary: `${verb === 'enable' ? 'Enable' : 'Disable'} the given Private Cloud user`,
        params: UserParams,
        response: { 200: Type.Ref(Task), ...commonErrors },
      },
      handler: (request) => users().setActivation(request.params.serviceName, request.params.userId, enable, actorOf(request)),
    });
  }

  app.post('/dedicatedCloud/:serviceName/user/:userId/confirmPhoneNumber', {
    schema: {
      tags,
      summary: 'Confirm the phone number of the user with the token sent by SMS',
      params: UserParams,
      body: Type.Object(
        { token: Type.String({ minLength: 1, maxLength: 16, description: 'Token sent by SMS' }) },
        { additionalProperties: false },
      ),
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      users().confirmPhoneNumber(request.params.serviceName, request.params.userId, request.body.token, actorOf(request)),
  });

  app.get('/dedicatedCloud/:serviceName/user/:userId/task', {
    schema: {
      tags,
      summary: 'Tasks associated with this User',
      params: UserParams,
      querystring: Type.Object(
        { name: Type.Optional(Type.String({ maxLength: 100 })), state: Type.Optional(Type.Ref(TaskStateEnum)) },
        { additionalProperties: false },
      ),
      response: { 200: IdList, ...commonErrors },
    },
    handler: async (request) => {
      await users().require(request.params.serviceName, request.params.userId);
      return app.services.tasks.list(request.params.serviceName, { ...request.query, userId: request.params.userId });
    },
  });

  app.get('/dedicatedCloud/:serviceName/user/:userId/task/:taskId', {
    schema: {
      tags,
      summary: 'Get this object properties',
      params: TaskParams,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.tasks.get(request.params.serviceName, request.params.taskId, { userId: request.params.userId }),
  });

  app.post('/dedicatedCloud/:serviceName/user/:userId/task/:taskId/resetTaskState', {
    schema: {
      tags,
      summary: 'Relaunch operation currently in error state',
      params: TaskParams,
      body: ResetTaskStateBody,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.tasks.resetTaskState(request.params.serviceName, request.params.taskId, request.body.reason, {
        userId: request.params.userId,
      }),
  });

  app.post('/dedicatedCloud/:serviceName/user/:userId/task/:taskId/changeMaintenanceExecutionDate', {
    schema: {
      tags,
      summary: 'Change the execution date of a maintenance operation',
      params: TaskParams,
      body: ChangeExecutionDateBody,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.tasks.changeMaintenanceExecutionDate(
        request.params.serviceName,
        request.params.taskId,
        request.body.executionDate,
        { userId: request.params.userId },
      ),
  });
}
