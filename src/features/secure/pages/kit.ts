import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../../http/errors.js';
import { html, type HtmlValue } from '../../../http/html.js';
import type { App } from '../../../http/types.js';
import type { SessionUser } from '../context.js';
import { sendPage, type Nav, type PageMessage } from './layout.js';
import type { PageSessions } from './page-session.js';

export const Params = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) });
export const OperationParams = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: 63 }),
  operationId: Type.String({ pattern: '^[0-9]{1,12}$' }),
});
/** A form: named text fields, none long. What each screen reads it checks itself, after the CSRF token. */
export const Form = Type.Object({}, { additionalProperties: Type.String({ maxLength: 512 }) });
export type FormFields = Record<string, string | undefined>;
/** HTML routes: out of the OpenAPI document. */
export const hidden = { hide: true } as const;

const FIELD_NAMES: Record<string, string> = {
  newPassword: 'New password',
  code: '2FA code',
  enrollmentId: 'The 2FA secret',
  token: 'Token',
  login: 'Login',
};

/** An API error as a page says it: the service's own message (they reveal nothing), its field named for people. */
export function failureOf(err: unknown): PageMessage & { status: number } {
  if (!(err instanceof ApiError)) throw err;
  const text = err.message.replace(/^\[(\w+)\] /, (_m, field: string) => `${FIELD_NAMES[field] ?? field}: `);
  return { kind: 'error', text, status: err.statusCode };
}

/** What every screen needs: the app, the cookies, the page shell. */
export class Screens {
  constructor(
    readonly app: App,
    readonly sessions: PageSessions,
  ) {}

  nav(serviceName: string, request: FastifyRequest, session?: SessionUser): Nav {
    const base = this.sessions.base(serviceName);
    if (!session) return { base, serviceName };
    return {
      base,
      serviceName,
      user: {
        name: session.user.name,
        csrf: this.sessions.sessionCsrf(serviceName, session, request),
        renewal: session.scope === 'credentialsRenewal',
      },
    };
  }

  page(reply: FastifyReply, status: number, title: string, nav: Nav, body: HtmlValue) {
    return sendPage(reply, status, title, nav, body);
  }

  /**
   * The service of the URL, and the access policy of an anonymous page (`userAccessPolicy: filtered`): from outside
   * the allowed networks the page says so and offers nothing. Sends the page and returns false when it may not go on.
   */
  async anonymousAllowed(request: FastifyRequest, reply: FastifyReply, serviceName: string): Promise<boolean> {
    const { services, allowedNetworks } = this.app.services;
    const nav = this.nav(serviceName, request);
    try {
      const service = await services.find(serviceName);
      if (service.user_access_policy !== 'filtered' || (await allowedNetworks.isAllowed(serviceName, request.clientIp)))
        return true;
      await this.page(reply, 403, 'Access refused', nav, html`<p>Your IP address is not allowed to access this service.</p>`);
    } catch (err) {
      const failure = failureOf(err);
      if (failure.status === 404) await this.notFound(reply);
      else await this.page(reply, failure.status, 'Access refused', nav, html`<p>${failure.text}.</p>`);
    }
    return false;
  }

  /**
   * The answer for a service that does not exist: generic, never the name of the URL, which anyone can fill with a
   * message of their own ("…call this number") shown in the title and header of a page of this trusted origin.
   */
  notFound(reply: FastifyReply) {
    return sendPage(
      reply,
      404,
      'Not found',
      { base: '/secure/', serviceName: 'pcc-2fa' },
      html`<p>There is no such page.</p>
        <p><a href="/secure/">Certified interfaces</a></p>`,
    );
  }

  /**
   * The user of the session cookie, or undefined once the answer is sent: a redirection to the login page (no cookie,
   * an ended or expired session), or a refusal (the access policy, checked on every call like the API's).
   */
  async user(request: FastifyRequest, reply: FastifyReply, serviceName: string, then?: string): Promise<SessionUser | undefined> {
    const token = this.sessions.sessionToken(request);
    try {
      if (token) return await this.app.services.secure.authenticate(serviceName, token, request.clientIp);
    } catch (err) {
      const failure = failureOf(err);
      if (failure.status !== 401) {
        await this.page(reply, failure.status, 'Access refused', this.nav(serviceName, request), html`<p>${failure.text}.</p>`);
        return undefined;
      }
      this.sessions.clearSession(request, reply, serviceName);
    }
    const query = new URLSearchParams(token ? { expired: '1' } : {});
    if (then) query.set('then', then);
    const search = query.size > 0 ? `?${query.toString()}` : '';
    await reply.redirect(`${this.sessions.base(serviceName)}login${search}`, 303);
    return undefined;
  }

  /** A logged-in form's CSRF token checked; a refusal page sent (403) when it does not match. */
  async csrfOk(request: FastifyRequest, reply: FastifyReply, serviceName: string, form: FormFields, session?: SessionUser) {
    const ok = this.sessions.csrfMatches(request, serviceName, session ? 'session' : 'anonymous', form.csrf);
    if (ok) return true;
    await this.page(
      reply,
      403,
      'Form expired',
      this.nav(serviceName, request, session),
      html`<p class="message error" role="alert">This form was not sent from this page, or it is too old. Nothing was done.</p>
        <p><a href="${this.sessions.base(serviceName)}">Start again</a></p>`,
    );
    return false;
  }
}
