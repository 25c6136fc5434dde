import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { serializeCookie, soleCookie } from '../../../http/cookies.js';
import { contexts } from '../../../security/contexts.js';
import type { SecretBox } from '../../../security/secret-box.js';
import type { SessionUser } from '../context.js';

export const SESSION_COOKIE = 'pcc_session';
export const FORM_COOKIE = 'pcc_form';

export interface PageOptions {
  box: SecretBox;
  /** `PUBLIC_URL`: an `https://` one means the browser speaks TLS even behind a proxy that does not. */
  publicUrl: string;
}

/**
 * What the pages keep in the browser: the session token in an `HttpOnly`, `SameSite=Strict` cookie scoped to the
 * service's path (`Secure` under TLS), and, before a login, a random form cookie. Every form carries a CSRF token that
 * is a keyed hash of one of them: of the session token once logged in (a session-bound token), of the form cookie
 * before (a signed double submit). A token never outlives what it is bound to, and another site can neither read it
 * nor make the browser send the cookies.
 */
export class PageSessions {
  constructor(private readonly options: PageOptions) {}

  base = (serviceName: string) => `/secure/${encodeURIComponent(serviceName)}/`;

  private secure(request: FastifyRequest): boolean {
    return request.protocol === 'https' || this.options.publicUrl.startsWith('https:');
  }

  private cookie(request: FastifyRequest, name: string): string | undefined {
    // A duplicated session or form cookie is no cookie at all: the first of two may have been planted.
    const value = soleCookie(request.headers.cookie, name);
    return value && /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined;
  }

  sessionToken = (request: FastifyRequest) => this.cookie(request, SESSION_COOKIE);

  setSession(request: FastifyRequest, reply: FastifyReply, serviceName: string, token: string): void {
    reply.header('Set-Cookie', [
      serializeCookie(SESSION_COOKIE, token, { path: this.base(serviceName), secure: this.secure(request) }),
      // The pre-login form binding is of no more use: a login CSRF token cannot be replayed after it.
      serializeCookie(FORM_COOKIE, '', { path: this.base(serviceName), secure: this.secure(request), maxAge: 0 }),
    ]);
  }

  clearSession(request: FastifyRequest, reply: FastifyReply, serviceName: string): void {
    reply.header(
      'Set-Cookie',
      serializeCookie(SESSION_COOKIE, '', { path: this.base(serviceName), secure: this.secure(request), maxAge: 0 }),
    );
  }

  private token(serviceName: string, binding: 'session' | 'anonymous', value: string): string {
    return this.options.box.mac(contexts.pageCsrf(serviceName, binding, value)).toString('base64url');
  }

  /** The CSRF token of a logged-in user's forms. */
  sessionCsrf = (serviceName: string, session: SessionUser, request: FastifyRequest) =>
    this.token(serviceName, 'session', this.sessionToken(request) ?? String(session.sessionId));

  /** The CSRF token of an anonymous form (login, password lost), setting the form cookie it is bound to if needed. */
  anonymousCsrf(request: FastifyRequest, reply: FastifyReply, serviceName: string): string {
    let value = this.cookie(request, FORM_COOKIE);
    if (!value) {
      value = randomBytes(24).toString('base64url');
      reply.header(
        'Set-Cookie',
        serializeCookie(FORM_COOKIE, value, { path: this.base(serviceName), secure: this.secure(request) }),
      );
    }
    return this.token(serviceName, 'anonymous', value);
  }

  /** Whether a posted form's token matches the session (`session`) or the form cookie (`anonymous`) of this browser. */
  csrfMatches(request: FastifyRequest, serviceName: string, binding: 'session' | 'anonymous', posted: unknown): boolean {
    const value = binding === 'session' ? this.sessionToken(request) : this.cookie(request, FORM_COOKIE);
    if (!value || typeof posted !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(posted)) return false;
    return this.options.box.macMatches(contexts.pageCsrf(serviceName, binding, value), Buffer.from(posted, 'base64url'));
  }
}
