import type { LightMyRequestResponse } from 'fastify';
import type { App } from '../../src/http/types.js';

/** One `Set-Cookie` value, parsed: its name, value and attributes (lower-cased names). */
export function parseSetCookie(header: string) {
  const [pair, ...attrs] = header.split(';').map((p) => p.trim());
  const eq = pair!.indexOf('=');
  const attributes = new Map(
    attrs.map((a) => {
      const i = a.indexOf('=');
      return (i < 0 ? [a.toLowerCase(), ''] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)]) as [string, string];
    }),
  );
  return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attributes };
}

export const setCookies = (res: LightMyRequestResponse): string[] => {
  const raw = res.headers['set-cookie'];
  return raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
};

/** The CSRF token of the (first) form of a page. */
export function csrfOf(body: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(body);
  if (!match) throw new Error(`no CSRF token on the page: ${body.slice(0, 400)}`);
  return match[1]!;
}

/**
 * A browser over `app.inject`: a cookie jar (the cookies the server sets, sent back on every request; this test's
 * paths all lie under one service, so paths are not matched), forms posted URL-encoded, from one client address.
 */
export class PageBrowser {
  readonly cookies = new Map<string, string>();
  last: LightMyRequestResponse | undefined;

  constructor(
    private readonly app: App,
    readonly ip: string,
  ) {}

  private remember(res: LightMyRequestResponse) {
    for (const header of setCookies(res)) {
      const c = parseSetCookie(header);
      if (c.attributes.get('max-age') === '0') this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    this.last = res;
    return res;
  }

  private cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string, headers: Record<string, string> = {}) {
    return this.remember(
      await this.app.inject({ method: 'GET', url, remoteAddress: this.ip, headers: { cookie: this.cookieHeader(), ...headers } }),
    );
  }

  async post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        remoteAddress: this.ip,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: this.cookieHeader(), ...headers },
        payload: new URLSearchParams(fields).toString(),
      }),
    );
  }

  /** Posts a form of the page at `pageUrl` with its CSRF token, as a person would after opening it. */
  async submit(pageUrl: string, action: string, fields: Record<string, string>) {
    const page = await this.get(pageUrl);
    return this.post(action, { csrf: csrfOf(page.body), ...fields });
  }
}
