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
