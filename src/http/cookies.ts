/** Cookies without a dependency: parsing the `Cookie` header, writing one `Set-Cookie` value. */

/** The cookies of a request; a malformed pair is skipped, the first of two same-named cookies wins. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const raw of (header ?? '').split(';')) {
    const part = raw.trim();
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/**
 * The one cookie of that name, or undefined when there is none or more than one: a second cookie of the same name was
 * set by someone else (a sibling subdomain, a plain-HTTP answer, another path), and which one the browser sends first
 * is not the server's choice. Nothing that binds a session or a form may then be trusted.
 */
export function soleCookie(header: string | undefined, name: string): string | undefined {
  let found: string | undefined;
  let count = 0;
  for (const raw of (header ?? '').split(';')) {
    const part = raw.trim();
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    count++;
    found = parseCookies(part).get(name);
  }
  return count === 1 ? found : undefined;
}

export interface CookieOptions {
  path: string;
  secure: boolean;
  /** Seconds; 0 deletes the cookie; undefined: until the browser closes. */
  maxAge?: number;
}

/** Always `HttpOnly` and `SameSite=Strict`: no script reads these cookies and no other site sends them. */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (/[;\s]/.test(options.path) || !/^[A-Za-z0-9_-]+$/.test(name) || !/^[A-Za-z0-9_-]*$/.test(value))
    throw new Error('cookie name or value out of range');
  const parts = [`${name}=${value}`, `Path=${options.path}`, 'HttpOnly', 'SameSite=Strict'];
  if (options.secure) parts.push('Secure');
  if (options.maxAge !== undefined) parts.push(`Max-Age=${options.maxAge}`);
  return parts.join('; ');
}
