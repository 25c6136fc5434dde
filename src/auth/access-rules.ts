import type { AccessRule } from '../db/types.js';

export const RULE_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** A rule path: `/`-rooted, `*` as the only wildcard (it spans `/` too, as OVH's do). */
export const RULE_PATH_PATTERN = "^/[A-Za-z0-9_.~%{}*/:@!$&'()+,;=-]*$";

const cache = new Map<string, RegExp>();

function ruleRegex(path: string): RegExp {
  let re = cache.get(path);
  if (!re) {
    re = new RegExp(`^${path.split('*').map(escape).join('.*')}$`);
    if (cache.size > 10_000) cache.clear();
    cache.set(path, re);
  }
  return re;
}

const escape = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** Whether a call (method and path below the API prefix, without query string) is inside the rules. */
export function isGranted(rules: readonly AccessRule[], method: string, path: string): boolean {
  return rules.some((rule) => rule.method === method && ruleRegex(rule.path).test(path));
}
