import type { AccessRule } from '../../db/types.js';

export const RULE_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** A rule path: `/`-rooted, `*` as the only wildcard (it spans `/` too, as OVH's do). */
export const RULE_PATH_PATTERN = "^/[A-Za-z0-9_.~%{}*/:@!$&'()+,;=-]*$";

/** Most `*` in one rule. OVH's own rules hold one or two; the matcher is linear whatever the count. */
export const MAX_RULE_STARS = 8;

/**
 * Whether `path` matches the glob `pattern`, where `*` stands for any run of characters. Linear in the path for each
 * segment: the literal segments between stars are found left to right, each at its earliest place, which is enough
 * for a glob whose only wildcard is `*` (an earlier match never rules out a later one). No regular expression is
 * built, so no rule can make a match backtrack.
 */
export function globMatches(pattern: string, path: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === path;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (path.length < first.length + last.length || !path.startsWith(first) || !path.endsWith(last)) return false;
  let at = first.length;
  const end = path.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!;
    if (part === '') continue;
    const found = path.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** Whether a call (method and path below the API prefix, without query string) is inside the rules. */
export function isGranted(rules: readonly AccessRule[], method: string, path: string): boolean {
  return rules.some((rule) => rule.method === method && globMatches(rule.path, path));
}
