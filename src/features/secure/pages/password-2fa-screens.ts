import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../../http/html.js';
import { qrCodePng } from '../../../security/totp.js';
import type { SessionUser } from '../context.js';
import { Form, failureOf, hidden, Params, type FormFields, type Screens } from './kit.js';
import { duration, message, utc, type PageMessage } from './layout.js';

const ENROLLMENT_ID = /^[A-Za-z0-9]{1,64}$/;
/** The secret in groups of four, as authenticator apps show it; spaces do not matter when it is typed. */
const grouped = (secret: string) => secret.replace(/(.{4})(?=.)/g, '$1 ');

/**
 * "Password and 2FA Shared Secret": a new secret (its QR code as an image, the secret as text), the new password twice
 * and the code of the app; then the change waits for operation validation.
 */
export function password2faScreens(s: Screens) {
  const { app, sessions } = s;
  const TITLE = 'Password and 2FA Shared Secret';

  const intro = (
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string,
    session: SessionUser,
    status: number,
    m?: PageMessage,
  ) =>
    s.page(
      reply,
      status,
      TITLE,
      s.nav(serviceName, request, session),
      html`${message(m)}
        <ol class="steps">
          <li>
            Get a new 2FA secret: a QR code to scan with the authenticator app of your phone (Google Authenticator, Authy,
            FreeOTP, OTP Auth…).
          </li>
          <li>Type a new password twice, and the code the app then shows.</li>
          <li>
            This creates a task, and a token is sent by SMS to
            ${session.user.is_token_validator ? 'you (or the other token validators)' : 'the token validators'}: it is typed on
            "Operation validation". Nothing changes before that.
          </li>
        </ol>
        <form method="post" action="${sessions.base(serviceName)}password-2fa/start">
          <input type="hidden" name="csrf" value="${sessions.sessionCsrf(serviceName, session, request)}" />
          <button type="submit">Get a new 2FA secret</button>
        </form>`,
    );

  const enrollForm = async (
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string,
    session: SessionUser,
    enrollmentId: string,
    status: number,
    m?: PageMessage,
  ) => {
    const offer = ENROLLMENT_ID.test(enrollmentId) ? await app.services.secure.enrollmentOffer(session, enrollmentId) : undefined;
    if (!offer)
      return intro(request, reply, serviceName, session, m ? status : 410, {
        kind: 'error',
        text: m?.text ?? 'This 2FA secret expired or was used: get a new one.',
      });
    const base = sessions.base(serviceName);
    const left = offer.expiresAt.getTime() - app.clock.now().getTime();
    const qr = `${base}password-2fa/qr.png?enrollment=${encodeURIComponent(offer.enrollmentId)}`;
    return s.page(
      reply,
      status,
      TITLE,
      s.nav(serviceName, request, session),
      html`${message(m)}
        <h2>1. Scan the QR code</h2>
        <img
          class="qr"
          id="qr"
          src="${qr}"
          width="256"
          height="256"
          alt="QR code of your new 2FA secret, for an authenticator app"
        />
        <p>Or type this secret in the app by hand (time-based, 6 digits, 30 seconds):</p>
        <p><code class="secret" id="secret">${grouped(offer.secret)}</code></p>
        <p>
          This secret is offered until ${utc(offer.expiresAt)} (<span data-seconds-left="${Math.max(0, Math.floor(left / 1000))}"
            >${duration(left)} left</span
          >).
        </p>
        <h2>2. New password and code</h2>
        <form method="post" action="${base}password-2fa">
          <input type="hidden" name="csrf" value="${sessions.sessionCsrf(serviceName, session, request)}" />
          <input type="hidden" name="enrollmentId" value="${offer.enrollmentId}" />
          <label for="newPassword">New password</label>
          <span class="hint" id="newPassword-hint"
            >It must follow the service's password policy and differ from your recent ones.</span
          >
          <input
            id="newPassword"
            aria-describedby="newPassword-hint"
            name="newPassword"
            type="password"
            autocomplete="new-password"
            required
            maxlength="256"
          />
          <label for="newPasswordAgain">New password, again</label>
          <input
            id="newPasswordAgain"
            name="newPasswordAgain"
            type="password"
            autocomplete="new-password"
            required
            maxlength="256"
            data-same-as="newPassword"
          />
          <label for="code">Code shown by the app</label>
          <span class="hint" id="code-hint">6 digits</span>
          <input
            id="code"
            aria-describedby="code-hint"
            name="code"
            inputmode="numeric"
            autocomplete="one-time-code"
            required
            maxlength="6"
            pattern="[0-9]{6}"
          />
          <button type="submit">Confirm</button>
        </form>`,
    );
  };

  app.get('/secure/:serviceName/password-2fa', { schema: { hide: true, params: Params } }, async (request, reply) => {
    const { serviceName } = request.params;
    const session = await s.user(request, reply, serviceName, 'password-2fa');
    if (!session) return reply;
    const enrollment = (request.query as Record<string, unknown>).enrollment;
    if (typeof enrollment === 'string') return enrollForm(request, reply, serviceName, session, enrollment, 200);
    return intro(request, reply, serviceName, session, 200);
  });

  app.post(
    '/secure/:serviceName/password-2fa/start',
    { schema: { ...hidden, params: Params, body: Form }, config: { rateLimit: { max: 20, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const session = await s.user(request, reply, serviceName);
      if (!session) return reply;
      if (!(await s.csrfOk(request, reply, serviceName, request.body as FormFields, session))) return reply;
      const { enrollmentId } = await app.services.secure.startEnrollment(serviceName, session);
      return reply.redirect(`${sessions.base(serviceName)}password-2fa?enrollment=${encodeURIComponent(enrollmentId)}`, 303);
    },
  );

  // Each draws the QR code (about 11 ms of CPU).
  app.get(
    '/secure/:serviceName/password-2fa/qr.png',
    { schema: { hide: true, params: Params }, config: { rateLimit: { max: 30, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const session = await s.user(request, reply, serviceName);
      if (!session) return reply;
      const enrollment = (request.query as Record<string, unknown>).enrollment;
      const offer =
        typeof enrollment === 'string' && ENROLLMENT_ID.test(enrollment)
          ? await app.services.secure.enrollmentOffer(session, enrollment)
          : undefined;
      if (!offer)
        return reply.code(404).header('Cache-Control', 'no-store').type('text/plain; charset=utf-8').send('No such 2FA secret');
      return reply
        .type('image/png')
        .header('Cache-Control', 'no-store')
        .send(await qrCodePng(offer.otpauthUri));
    },
  );

  app.post(
    '/secure/:serviceName/password-2fa',
    { schema: { ...hidden, params: Params, body: Form }, config: { rateLimit: { max: 20, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const session = await s.user(request, reply, serviceName);
      if (!session) return reply;
      const form = request.body as FormFields;
      if (!(await s.csrfOk(request, reply, serviceName, form, session))) return reply;
      const enrollmentId = form.enrollmentId ?? '';
      const newPassword = form.newPassword ?? '';
      if (newPassword === '' || newPassword !== form.newPasswordAgain) {
        return enrollForm(request, reply, serviceName, session, enrollmentId, 400, {
          kind: 'error',
          text: 'The two new passwords differ: type the same password twice.',
        });
      }
      try {
        const { operationId } = await app.services.secure.changeCredentials(
          serviceName,
          session,
          { enrollmentId, newPassword, code: (form.code ?? '').trim() },
          request.clientIp,
        );
        return reply.redirect(`${sessions.base(serviceName)}validation/${operationId}?requested=1`, 303);
      } catch (err) {
        const failure = failureOf(err);
        return enrollForm(request, reply, serviceName, session, enrollmentId, failure.status, failure);
      }
    },
  );
}
