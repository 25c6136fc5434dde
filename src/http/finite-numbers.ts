import type { FastifyInstance } from 'fastify';
import { invalidField } from './errors.js';

/**
 * Ajv coerces `Infinity` and `1e400` to the number Infinity and then passes it as an integer within any `maximum`
 * (found by test/hostile-input.test.ts: `DELETE …/twoFAWhitelist/Infinity` reached PostgreSQL and answered 500). No
 * parameter here is infinite or NaN: after validation, any such number in the path, query or body is a 400.
 */
export function registerFiniteNumbers(app: FastifyInstance): void {
  app.addHook('preHandler', (request, _reply, done) => {
    const at =
      located('path', nonFiniteAt(request.params, '')) ??
      located('query', nonFiniteAt(request.query, '')) ??
      located('body', nonFiniteAt(request.body, ''));
    done(at === undefined ? undefined : invalidField(at, 'Given data is not valid: must be a finite number'));
  });
}

const located = (part: string, at: string | undefined) => (at === undefined ? undefined : at || part);

function nonFiniteAt(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const item = (value as Record<string, unknown>)[key];
    if (typeof item !== 'number' && (item === null || typeof item !== 'object')) continue;
    const found = nonFiniteAt(item, path ? `${path}.${key}` : key, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}
