import { Type } from '@sinclair/typebox';
import { DateTime, commonErrors } from '../../http/schemas.js';
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
      summary: 'Audit events of the service (extension), newest first, 1000 at most',
      params: Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) }),
      querystring: Type.Object(
        {
          from: Type.Optional({ ...DateTime, description: 'Events at or after this date' }),
          to: Type.Optional({ ...DateTime, description: 'Events before this date' }),
          type: Type.Optional(Type.String({ maxLength: 100, description: 'Exact type, or a prefix ending with * (login.*)' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Array(Type.Ref(AuditEvent)), ...commonErrors },
    },
    handler: (request) => app.services.audit.list(request.params.serviceName, request.query),
  });
}
