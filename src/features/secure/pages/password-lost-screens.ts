import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../../http/html.js';
import { Form, failureOf, hidden, Params, type FormFields, type Screens } from './kit.js';
import { message, type PageMessage } from './layout.js';

/**
 * "Password lost": the login, then the reset code received by SMS (or e-mail), which opens a credentials-renewal
 * session for "Password and 2FA Shared Secret". The page never tells whether the login exists.
 */
export function passwordLostScreens(s: Screens) {
  const { app, sessions } = s;

  const askLogin = (request: FastifyRequest, reply: FastifyReply, serviceName: string, status: number, m?: PageMessage) =>
    s.page(
      reply,
      status,
      'Password lost',
      s.nav(serviceName, request),
      html`${message(m)}
        <p>
          Type your login: a reset code is sent to your confirmed phone number (or your e-mail address). With it you will set a
          new password and set up your 2FA secret.
        </p>
        <form method="post" action="${sessions.base(serviceName)}password-lost">
          <input type="hidden" name="csrf" value="${sessions.anonymousCsrf(request, reply, serviceName)}" />
          <label for="login">Login</label>
          <input id="login" name="login" autocomplete="username" required maxlength="128" autofocus />
          <button type="submit">Send a reset code</button>
        </form>
        <p><a href="${sessions.base(serviceName)}login">Back to the login</a></p>`,
    );

  const askCode = (
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string,
    status: number,
    login: string,
    m: PageMessage,
  ) =>
    s.page(
      reply,
      status,
      'Password lost',
      s.nav(serviceName, request),
      html`${message(m)}
        <form method="post" action="${sessions.base(serviceName)}password-lost/code">
          <input type="hidden" name="csrf" value="${sessions.anonymousCsrf(request, reply, serviceName)}" />
          <label for="login">Login</label>
          <input id="login" name="login" autocomplete="username" required maxlength="128" value="${login}" />
          <label for="resetToken">Reset code</label>
          <span class="hint" id="resetToken-hint">The 8 digits received by SMS or e-mail, valid 15 minutes</span>
          <input
            id="resetToken"
            aria-describedby="resetToken-hint"
            name="resetToken"
            inputmode="numeric"
            autocomplete="one-time-code"
            required
            maxlength="8"
            pattern="[0-9]{8}"
            autofocus
          />
          <button type="submit">Continue</button>
        </form>`,
    );

  app.get('/secure/:serviceName/password-lost', { schema: { hide: true, params: Params } }, async (request, reply) => {
    const { serviceName } = request.params;
    if (!(await s.anonymousAllowed(request, reply, serviceName))) return reply;
    return askLogin(request, reply, serviceName, 200);
  });

  app.post(
    '/secure/:serviceName/password-lost',
    { schema: { ...hidden, params: Params, body: Form }, config: { rateLimit: { max: 5, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const form = request.body as FormFields;
      if (!(await s.csrfOk(request, reply, serviceName, form))) return reply;
      const login = (form.login ?? '').trim().slice(0, 128);
      if (!login) return askLogin(request, reply, serviceName, 400, { kind: 'error', text: 'Type your login.' });
      try {
        await app.services.secure.passwordLost(serviceName, login, request.clientIp);
      } catch (err) {
        const failure = failureOf(err);
        return askLogin(request, reply, serviceName, failure.status, failure);
      }
      return askCode(request, reply, serviceName, 200, login, {
        kind: 'notice',
        text: 'If this login has a confirmed phone number or an e-mail address, a reset code is on its way. Type it below.',
      });
    },
  );

  app.post(
    '/secure/:serviceName/password-lost/code',
    { schema: { ...hidden, params: Params, body: Form }, config: { rateLimit: { max: 20, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const form = request.body as FormFields;
      if (!(await s.csrfOk(request, reply, serviceName, form))) return reply;
      const login = (form.login ?? '').trim().slice(0, 128);
      try {
        const session = await app.services.secure.login(
          serviceName,
          { login, resetToken: (form.resetToken ?? '').trim() },
          request.clientIp,
        );
        sessions.setSession(request, reply, serviceName, session.sessionToken);
        return reply.redirect(`${sessions.base(serviceName)}password-2fa`, 303);
      } catch (err) {
        const failure = failureOf(err);
        // The login's uniform answer, in the words of this form: it says no more than the login's.
        const text = failure.status === 401 ? 'Invalid login or reset code.' : failure.text;
        return askCode(request, reply, serviceName, failure.status, login, { kind: 'error', text });
      }
    },
  );
}
