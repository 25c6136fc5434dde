import type { FastifyInstance } from 'fastify';
import { invalidField } from './errors.js';

/**
 * Ajv coerces `Infinity` and `1e400` to the number Infinity and then passes it as an integer within any `maximum`
 * (found by test/hostile-input.test.ts: `DELETE …/twoFAWhitelist/Infinity` reached PostgreSQL and answered 500). No
 * parameter here is infinite or NaN: after validation, any such number in the path, query or body is a 400.
 */
export function registerFiniteNumbers(app: FastifyInstance): void {
  app.addHook('preHandler', async (request) => {
    for (const [part, value] of [
      ['path', request.params],
      ['query', request.query],
      ['body', request.body],
    ] as const) {
      const at = nonFiniteAt(value, '');
      if (at !== undefined) throw invalidField(at || part, 'Given data is not valid: must be a finite number');
    }
  });
}

function nonFiniteAt(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = nonFiniteAt(item, path ? `${path}.${key}` : key, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}
