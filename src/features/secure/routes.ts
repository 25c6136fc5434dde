import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Id, OvhError, StringEnum } from '../../http/schemas.js';
import type { App } from '../../http/types.js';
import type { SessionUser } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    session: SessionUser;
  }
}

const Params = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) });
const OperationParams = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }), operationId: Id });
const tags = ['secure'];
const errors = {
  400: Type.Ref(OvhError),
  401: Type.Ref(OvhError),
  403: Type.Ref(OvhError),
  404: Type.Ref(OvhError),
  429: Type.Ref(OvhError),
};
const security = [{ sessionToken: [] }];

/** An answer that holds a secret (a session token, a TOTP secret): no cache keeps it, as OAuth2's token endpoint. */
const noStore = (reply: FastifyReply) => reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');

const Session = Type.Object({
  sessionToken: Type.String({ description: 'Send as `Authorization: Bearer <sessionToken>`' }),
  expiresAt: Type.String({ format: 'date-time' }),
  scope: StringEnum(['full', 'credentialsRenewal'], { description: '`credentialsRenewal`: only the credentials change is open' }),
});

/**
 * The certified interface (`/secure/{serviceName}`), as an API: a user's own login, then the guide's steps. Every
 * route but the login and "password lost" needs a session token.
 */
export default async function secureRoutes(app: App) {
  app.decorateRequest('session', null as unknown as SessionUser);
  app.addHook('preValidation', async (request: FastifyRequest) => {
    if (request.routeOptions.config.auth === 'none') return;
    const { serviceName } = request.params as { serviceName: string };
    const match = /^Bearer\s+([A-Za-z0-9]+)$/i.exec(request.headers.authorization ?? '');
    request.session = await app.services.secure.authenticate(serviceName, match?.[1] ?? '', request.clientIp);
  });

  app.post('/secure/:serviceName/session', {
    config: { auth: 'none', rateLimit: { max: 20, timeWindow: 60_000 } },
    schema: {
      tags,
      summary: 'Log in to the certified interface',
      description:
        'Login and password, plus the current 2FA code once the user has 2FA (not needed from a network of the twoFAWhitelist). `resetToken` instead of `password` after "password lost".',
      params: Params,
      body: Type.Object(
        {
          login: Type.String({ minLength: 1, maxLength: 128 }),
          password: Type.Optional(Type.String({ maxLength: 256 })),
          token: Type.Optional(Type.String({ maxLength: 16, description: 'The 6-digit code of the authenticator app' })),
          resetToken: Type.Optional(Type.String({ maxLength: 16, description: 'The code received after "password lost"' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: Session, ...errors },
    },
    handler: (request, reply) => {
      noStore(reply);
      return app.services.secure.login(request.params.serviceName, request.body, request.clientIp);
    },
  });

  app.delete('/secure/:serviceName/session', {
    schema: { tags, summary: 'Log out', security, params: Params, response: { 204: Type.Null(), ...errors } },
    handler: async (request, reply) => {
      await app.services.secure.logout(request.session, request.clientIp);
      return reply.code(204).send(null);
    },
  });

  // Each draws a QR code (about 11 ms of CPU): as many a minute per address as the page's form.
  app.post('/secure/:serviceName/credentials/enrollment', {
    config: { rateLimit: { max: 20, timeWindow: 60_000 } },
    schema: {
      tags,
      summary: 'Password and 2FA Shared Secret: get a new secret and its QR code',
      security,
      params: Params,
      response: {
        200: Type.Object({
          enrollmentId: Type.String(),
          secret: Type.String({ description: 'Base32, 160 bits' }),
          otpauthUri: Type.String(),
          qrCode: Type.String({ description: 'PNG data URI of otpauthUri' }),
          expiresAt: Type.String({ format: 'date-time' }),
        }),
        ...errors,
      },
    },
    handler: (request, reply) => {
      noStore(reply);
      return app.services.secure.startEnrollment(request.params.serviceName, request.session);
    },
  });

  // Each runs argon2id up to six times: as many a minute per address as the page's form (and 5 failed tries a user).
  app.post('/secure/:serviceName/credentials', {
    config: { rateLimit: { max: 20, timeWindow: 60_000 } },
    schema: {
      tags,
      summary: 'Change the password, and the 2FA secret with the code of the scanned QR code',
      description:
        'Creates a task that waits for operation validation; a token is sent by SMS. Nothing changes before validation.',
      security,
      params: Params,
      body: Type.Object(
        {
          newPassword: Type.String({ minLength: 1, maxLength: 256 }),
          enrollmentId: Type.Optional(Type.String({ maxLength: 64 })),
          code: Type.Optional(Type.String({ maxLength: 16, description: 'The current code of the new secret' })),
        },
        { additionalProperties: false },
      ),
      response: { 202: Type.Object({ taskId: Type.Integer(), operationId: Type.Integer() }), ...errors, 409: Type.Ref(OvhError) },
    },
    handler: async (request, reply) => {
      const result = await app.services.secure.changeCredentials(
        request.params.serviceName,
        request.session,
        request.body,
        request.clientIp,
      );
      return reply.code(202).send(result);
    },
  });

  const Operation = Type.Object({
    operationId: Type.Integer(),
    kind: Type.String(),
    state: StringEnum(['pending', 'validated', 'expired', 'blocked', 'canceled']),
    taskId: Type.Union([Type.Integer(), Type.Null()]),
    description: Type.Union([Type.String(), Type.Null()], { description: 'What the operation changes: its task' }),
    summary: Type.Union([Type.String(), Type.Null()], {
      description: 'What the SMS said it asks for: what changes, for whom, a right granted or revoked',
    }),
    user: Type.Union([Type.String(), Type.Null()]),
    requestedBy: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
    triesLeft: Type.Integer(),
  });

  app.get('/secure/:serviceName/operation/:operationId', {
    schema: {
      tags,
      summary: 'Operation validation: load the operation received by SMS',
      security,
      params: OperationParams,
      response: { 200: Operation, ...errors },
    },
    handler: (request) =>
      app.services.secure.describeOperation(request.params.serviceName, request.session, request.params.operationId),
  });

  app.post('/secure/:serviceName/operation/:operationId/validate', {
    config: { rateLimit: { max: 30, timeWindow: 60_000 } },
    schema: {
      tags,
      summary: 'Operation validation: confirm with the token received by SMS',
      security,
      params: OperationParams,
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 16 }) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          operationId: Type.Integer(),
          state: Type.Literal('validated'),
          taskId: Type.Union([Type.Integer(), Type.Null()]),
        }),
        ...errors,
      },
    },
    handler: (request) =>
      app.services.secure.validateOperation(
        request.params.serviceName,
        request.session,
        request.params.operationId,
        request.body.token,
        request.clientIp,
      ),
  });

  app.post('/secure/:serviceName/operation/:operationId/resend', {
    schema: {
      tags,
      summary: 'Send a new token for the operation (once a minute at most)',
      security,
      params: OperationParams,
      response: { 204: Type.Null(), ...errors },
    },
    handler: async (request, reply) => {
      await app.services.secure.resendToken(
        request.params.serviceName,
        request.session,
        request.params.operationId,
        request.clientIp,
      );
      return reply.code(204).send(null);
    },
  });

  app.post('/secure/:serviceName/passwordLost', {
    config: { auth: 'none', rateLimit: { max: 5, timeWindow: 60_000 } },
    schema: {
      tags,
      summary: 'Password lost: send a reset code by SMS or e-mail',
      description: 'Always 202, whether the login exists or not. Log in with `{login, resetToken}` to renew the credentials.',
      params: Params,
      body: Type.Object({ login: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
      response: { 202: Type.Null(), ...errors },
    },
    handler: async (request, reply) => {
      await app.services.secure.passwordLost(request.params.serviceName, request.body.login, request.clientIp);
      return reply.code(202).send(null);
    },
  });
}
