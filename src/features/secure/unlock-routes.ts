import { Type } from '@sinclair/typebox';
import { actorOf } from '../../http/actor.js';
import { Id, commonErrors } from '../../http/schemas.js';
import type { App } from '../../http/types.js';

const UnlockResult = Type.Object(
  {
    userId: Type.Integer(),
    unlocked: Type.Boolean({ description: 'Whether the user had failed logins to forget' }),
  },
  { description: 'What an unlock forgot (pcc-2fa extension)' },
);

/** An extension of OVH's API: the account that owns a service lifts a user's login lockout, audited. */
export default async function unlockRoutes(app: App) {
  app.post('/dedicatedCloud/:serviceName/user/:userId/unlock', {
    schema: {
      tags: ['dedicatedCloud.user'],
      summary: 'Clear the failed logins of a Private Cloud user (pcc-2fa extension, not in OVH’s API)',
      description:
        'Forgets the user’s failed logins, from every client address, so that his next login is checked at once. ' +
        'Client addresses keep their own counts (an operator clears them with `ip unlock`). Audited as `lockout.cleared`.',
      params: Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }), userId: Id }),
      response: { 200: UnlockResult, ...commonErrors },
    },
    handler: async (request) => {
      const { userId, unlocked } = await app.services.secure.unlockUserById(
        request.params.serviceName,
        request.params.userId,
        actorOf(request),
      );
      return { userId, unlocked };
    },
  });
}
