import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../../http/html.js';
import { Form, failureOf, hidden, Params, type FormFields, type Screens } from './kit.js';
import { message, type PageMessage } from './layout.js';

/** Where a login may lead next: a page of this service only (never a URL: no open redirection). */
const THEN = /^(validation\/[0-9]{1,12}|password-2fa|sessions|validation)$/;
const thenOf = (value: unknown) => (typeof value === 'string' && THEN.test(value) ? value : undefined);

/** The guide's login ("2FA connection"), the home page, logout and "Password lost". */
export function loginScreens(s: Screens) {
  const { app, sessions } = s;

  const loginForm = (
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string,
    status: number,
    o: { login?: string; then?: string | undefined; message?: PageMessage },
  ) => {
    const base = sessions.base(serviceName);
    const csrf = sessions.anonymousCsrf(request, reply, serviceName);
    return s.page(
      reply,
      status,
      'Log in',
      s.nav(serviceName, request),
      html`${message(o.message)}
        <form method="post" action="${base}login">
          <input type="hidden" name="csrf" value="${csrf}" />
          ${o.then ? html`<input type="hidden" name="then" value="${o.then}" />` : ''}
          <label for="login">Login</label>
          <span class="hint" id="login-hint">Your user name, or name@${serviceName}</span>
          <input
            id="login"
            aria-describedby="login-hint"
            name="login"
            autocomplete="username"
            required
            maxlength="128"
            value="${o.login ?? ''}"
            autofocus
          />
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="256" />
          <label for="token">2FA code</label>
          <span class="hint" id="token-hint"
            >The 6 digits of your authenticator app. Leave it empty if you have not set up 2FA yet.</span
          >
          <input
            id="token"
            aria-describedby="token-hint"
            name="token"
            inputmode="numeric"
            autocomplete="one-time-code"
            maxlength="6"
            pattern="[0-9]{6}"
          />
          <button type="submit">Log in</button>
        </form>
        <p class="explain">
          When 2FA is on for this service and you have not set it up yet, log in with your password alone: you will first renew
          your password and set up your 2FA secret ("credentials renewal"), and nothing else until then.
        </p>
        <p><a href="${base}password-lost">Password lost?</a></p>`,
    );
  };

  app.get('/secure/:serviceName/login', { schema: { hide: true, params: Params } }, async (request, reply) => {
    const { serviceName } = request.params;
    if (!(await s.anonymousAllowed(request, reply, serviceName))) return reply;
    const q = request.query as Record<string, unknown>;
    const note: PageMessage | undefined =
      q.out === '1'
        ? { kind: 'notice', text: 'You are logged out.' }
        : q.expired === '1'
          ? { kind: 'notice', text: 'Your session ended: log in again.' }
          : undefined;
    return loginForm(request, reply, serviceName, 200, { then: thenOf(q.then), ...(note ? { message: note } : {}) });
  });

  app.post(
    '/secure/:serviceName/login',
    { schema: { ...hidden, params: Params, body: Form }, config: { rateLimit: { max: 20, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const form = request.body as FormFields;
      if (!(await s.csrfOk(request, reply, serviceName, form))) return reply;
      const login = (form.login ?? '').slice(0, 128);
      const then = thenOf(form.then);
      try {
        // The JSON login itself: the same access policy, lockout, uniform failure and audit.
        const session = await app.services.secure.login(
          serviceName,
          { login, password: form.password ?? '', ...(form.token ? { token: form.token.trim() } : {}) },
          request.clientIp,
        );
        sessions.setSession(request, reply, serviceName, session.sessionToken);
        return reply.redirect(`${sessions.base(serviceName)}${then ?? ''}`, 303);
      } catch (err) {
        const failure = failureOf(err);
        if (failure.status === 429) reply.header('Retry-After', String(/(\d+) s/.exec(failure.text)?.[1] ?? 60));
        return loginForm(request, reply, serviceName, failure.status, { login, then, message: failure });
      }
    },
  );

  app.post('/secure/:serviceName/logout', { schema: { ...hidden, params: Params, body: Form } }, async (request, reply) => {
    const { serviceName } = request.params;
    const session = await s.user(request, reply, serviceName);
    if (!session) return reply;
    if (!(await s.csrfOk(request, reply, serviceName, request.body as FormFields, session))) return reply;
    await app.services.secure.logout(session, request.clientIp);
    sessions.clearSession(request, reply, serviceName);
    return reply.redirect(`${sessions.base(serviceName)}login?out=1`, 303);
  });

  app.get('/secure/:serviceName/', { schema: { hide: true, params: Params } }, async (request, reply) => {
    const { serviceName } = request.params;
    const session = await s.user(request, reply, serviceName);
    if (!session) return reply;
    const base = sessions.base(serviceName);
    const { user } = session;
    const renewal = session.scope === 'credentialsRenewal';
    return s.page(
      reply,
      200,
      'Certified interface',
      s.nav(serviceName, request, session),
      html`<p>You are logged in as <strong>${user.name}</strong>${user.is_token_validator ? ', a token validator' : ''}.</p>
        ${
          renewal
            ? html`<div class="explain" role="status">
                <p>
                  <strong>Credentials renewal.</strong> ${
                    user.totp_secret_ciphertext
                      ? 'You logged in with a reset code: set a new password and a new 2FA secret.'
                      : '2FA is on for this service and you have not set it up yet.'
                  }
                  Until a token validator approves your new password and 2FA secret, this is all you can do here.
                </p>
              </div>`
            : ''
        }
        <ul>
          <li>
            <a href="${base}password-2fa">Password and 2FA Shared Secret</a>: a new password and a new 2FA secret (a QR code for
            your phone).
          </li>
          <li>
            <a href="${base}validation">Operation validation</a>:
            ${
              user.is_token_validator
                ? 'load an operation received by SMS and confirm it with its token.'
                : 'follow a change you asked for, or have its token sent again.'
            }
          </li>
          <li><a href="${base}sessions">Sessions</a>: where you are logged in, and log out.</li>
        </ul>
        <p>2FA: ${user.totp_secret_ciphertext ? 'set up.' : 'not set up yet.'}</p>`,
    );
  });

  // The guide warns "do not forget the final /": without it, the same page.
  app.get('/secure/:serviceName', { schema: { hide: true, params: Params } }, async (request, reply) =>
    reply.redirect(sessions.base(request.params.serviceName), 301),
  );
}
