import { Type } from '@sinclair/typebox';
import type { DatabaseHandle } from '../db/database.js';
import type { App } from './types.js';

const Status = Type.Object({ status: Type.String() });

/** Liveness says the process answers; readiness says it can reach its database within a second. */
export async function healthRoutes(app: App, { handle }: { handle: DatabaseHandle }) {
  app.get('/health/live', { schema: { tags: ['operations'], summary: 'Liveness', response: { 200: Status } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/health/ready',
    { schema: { tags: ['operations'], summary: 'Readiness: the database answers', response: { 200: Status, 503: Status } } },
    async (_request, reply) => {
      try {
        await withTimeout(handle.ping(), 1000);
        return { status: 'ok' };
      } catch (err) {
        app.log.warn({ err }, 'readiness check failed');
        return reply.code(503).send({ status: 'database unavailable' });
      }
    },
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
