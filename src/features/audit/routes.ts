import { Type } from '@sinclair/typebox';
import { DateTime, Id, commonErrors } from '../../http/schemas.js';
import { DEFAULT_PAGE, MAX_PAGE } from './service.js';
import type { App } from '../../http/types.js';

const AuditEvent = Type.Object(
  {
    id: Type.Integer(),
    date: Type.String({ format: 'date-time' }),
    type: Type.String({ examples: ['login.2faBypass'] }),
    actor: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    userId: Type.Union([Type.Integer(), Type.Null()]),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'pcc.AuditEvent', title: 'pcc.AuditEvent', description: 'Extension: one append-only audit event' },
);

/** Extension: every authentication decision, bypass, lockout, credential change, validation and whitelist change. */
export default async function auditRoutes(app: App) {
  app.addSchema(AuditEvent);
  app.get('/dedicatedCloud/:serviceName/auditLog', {
    schema: {
      tags: ['dedicatedCloud'],
      summary: 'Audit events of the service (extension), newest first, a page at a time',
      description:
        'Pages newest first, by date then id: `limit` events (default 100, at most 1000); the next page passes the last id seen as `before`.',
      params: Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) }),
      querystring: Type.Object(
        {
          from: Type.Optional({ ...DateTime, description: 'Events at or after this date' }),
          to: Type.Optional({ ...DateTime, description: 'Events before this date' }),
          type: Type.Optional(Type.String({ maxLength: 100, description: 'Exact type, or a prefix ending with * (login.*)' })),
          userId: Type.Optional({ ...Id, description: 'Only the events about this user' }),
          before: Type.Optional({ ...Id, description: 'Only events older than this one (its id): the next page' }),
          limit: Type.Optional(
            Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE, description: 'Events per page' }),
          ),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Array(Type.Ref(AuditEvent)), ...commonErrors },
    },
    handler: (request) => app.services.audit.list(request.params.serviceName, request.query),
  });
}
