import { badRequest } from '../../http/errors.js';

const OPERATORS = new Set(['EQ', 'EXISTS', 'ILIKE', 'LIKE', 'NEQ', 'NEXISTS']);

/**
 * OVH's `iamTags` filter (`map[string][]iam.resource.TagFilter`, sent as JSON text) applied to a resource that has no
 * tag, as every service here: a condition on a tag holds only when it asks for its absence (`NEXISTS`, or `NEQ`, which
 * an absent tag satisfies). All conditions must hold. A malformed filter is a 400.
 */
export function iamTagsMatchUntagged(text: string): boolean {
  let filter: unknown;
  try {
    filter = JSON.parse(text);
  } catch {
    throw badRequest('[iamTags] must be a JSON object of tag filters');
  }
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter))
    throw badRequest('[iamTags] must be a JSON object of tag filters');
  let matches = true;
  for (const conditions of Object.values(filter)) {
    if (!Array.isArray(conditions)) throw badRequest('[iamTags] each tag must have a list of filters');
    for (const c of conditions as unknown[]) {
      const operator = (c as { operator?: unknown })?.operator ?? 'EQ';
      if (typeof operator !== 'string' || !OPERATORS.has(operator))
        throw badRequest(`[iamTags] unknown operator ${String(operator)}`);
      if (operator !== 'NEXISTS' && operator !== 'NEQ') matches = false;
    }
  }
  return matches;
}
