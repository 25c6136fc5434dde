import type { FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../../http/html.js';
import type { SessionUser } from '../context.js';
import { Form, failureOf, hidden, OperationParams, Params, type FormFields, type Screens } from './kit.js';
import { duration, message, utc, type PageMessage } from './layout.js';

const STATES: Record<string, string> = {
  validated: 'validated: its task runs, or ran',
  expired: 'expired: its task was canceled',
  blocked: 'ended by too many wrong tokens: its task was canceled',
  canceled: 'canceled',
};

/**
 * "Operation validation": a token validator loads the operation received by SMS (its link, or its id), sees what it
 * changes and who asked, and types the token. The tries left and the expiry are shown; the token can be sent again.
 */
export function validationScreens(s: Screens) {
  const { app, sessions } = s;
  const TITLE = 'Operation validation';

  const chooser = (
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
        <p>Open the operation of the SMS you received: follow its link, or type its number here.</p>
        <form method="get" action="${sessions.base(serviceName)}validation">
          <label for="operation">Operation number</label>
          <input id="operation" name="operation" inputmode="numeric" required maxlength="12" pattern="[0-9]+" autofocus />
          <button type="submit">Load the operation</button>
        </form>`,
    );

  const operationPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string,
    session: SessionUser,
    operationId: number,
    status: number,
    m?: PageMessage,
  ) => {
    const base = sessions.base(serviceName);
    const csrf = sessions.sessionCsrf(serviceName, session, request);
    const resend = html`<form method="post" action="${base}validation/${operationId}/resend">
      <input type="hidden" name="csrf" value="${csrf}" />
      <button type="submit" class="secondary">Send the token again</button>
    </form>`;
    let op: Awaited<ReturnType<typeof app.services.secure.describeOperation>>;
    try {
      op = await app.services.secure.describeOperation(serviceName, session, operationId);
    } catch (err) {
      const failure = failureOf(err);
      if (failure.status === 404) return chooser(request, reply, serviceName, session, 404, failure);
      // A user who is no token validator (or must renew first) follows his own request: it waits for a validator.
      return s.page(
        reply,
        m ? status : 200,
        TITLE,
        s.nav(serviceName, request, session),
        html`${message(m)}
          <p>${failure.text}: operation <strong>${operationId}</strong> is not yours to open.</p>
          <p>
            If it is your own request, it waits for a token validator, who received its token by SMS and can have it sent again.
          </p>`,
      );
    }
    const pending = op.state === 'pending';
    const left = new Date(op.expiresAt).getTime() - app.clock.now().getTime();
    return s.page(
      reply,
      status,
      `${TITLE}: operation ${op.operationId}`,
      s.nav(serviceName, request, session),
      html`${message(m)}
        <table>
          <tr>
            <th scope="row">Change</th>
            <td>${op.description ?? op.kind}</td>
          </tr>
          ${
            op.summary
              ? html`<tr>
                  <th scope="row">As the SMS said</th>
                  <td id="summary">${op.summary}</td>
                </tr>`
              : ''
          }
          <tr>
            <th scope="row">Kind</th>
            <td>${op.kind}${op.taskId !== null ? ` (task ${op.taskId})` : ''}</td>
          </tr>
          <tr>
            <th scope="row">About the user</th>
            <td>${op.user ?? '—'}</td>
          </tr>
          <tr>
            <th scope="row">Asked by</th>
            <td>${op.requestedBy}, ${utc(new Date(op.createdAt))}</td>
          </tr>
          <tr>
            <th scope="row">State</th>
            <td id="state">${pending ? 'waiting for its token' : (STATES[op.state] ?? op.state)}</td>
          </tr>
          ${
            pending
              ? html`<tr>
                    <th scope="row">Expires</th>
                    <td>
                      ${utc(new Date(op.expiresAt))} (<span data-seconds-left="${Math.max(0, Math.floor(left / 1000))}"
                        >${duration(left)} left</span
                      >)
                    </td>
                  </tr>
                  <tr>
                    <th scope="row">Tries left</th>
                    <td id="tries">${op.triesLeft}</td>
                  </tr>`
              : ''
          }
        </table>
        ${
          pending
            ? html`<form method="post" action="${base}validation/${op.operationId}">
                  <input type="hidden" name="csrf" value="${csrf}" />
                  <label for="token">Token received by SMS</label>
                  <span class="hint" id="token-hint">8 digits</span>
                  <input
                    id="token"
                    aria-describedby="token-hint"
                    name="token"
                    inputmode="numeric"
                    autocomplete="one-time-code"
                    required
                    maxlength="8"
                    pattern="[0-9]{8}"
                    autofocus
                  />
                  <button type="submit">Validate</button>
                </form>
                ${session.scope === 'full' ? resend : ''}`
            : html`<p><a href="${base}validation">Another operation</a></p>`
        }`,
    );
  };

  app.get('/secure/:serviceName/validation', { schema: { hide: true, params: Params } }, async (request, reply) => {
    const { serviceName } = request.params;
    const session = await s.user(request, reply, serviceName, 'validation');
    if (!session) return reply;
    const wanted = (request.query as Record<string, unknown>).operation;
    if (typeof wanted === 'string' && /^\s*[0-9]{1,12}\s*$/.test(wanted))
      return reply.redirect(`${sessions.base(serviceName)}validation/${Number(wanted)}`, 303);
    if (wanted !== undefined)
      return chooser(request, reply, serviceName, session, 400, {
        kind: 'error',
        text: 'An operation number is made of digits.',
      });
    return chooser(request, reply, serviceName, session, 200);
  });

  app.get(
    '/secure/:serviceName/validation/:operationId',
    { schema: { hide: true, params: OperationParams } },
    async (request, reply) => {
      const { serviceName, operationId } = request.params;
      const session = await s.user(request, reply, serviceName, `validation/${Number(operationId)}`);
      if (!session) return reply;
      const q = request.query as Record<string, unknown>;
      const note: PageMessage | undefined =
        q.requested === '1'
          ? { kind: 'notice', text: `Your change is operation ${Number(operationId)}: it waits for its token, sent by SMS.` }
          : q.resent === '1'
            ? { kind: 'notice', text: 'A new token was sent: the previous one no longer works.' }
            : undefined;
      return operationPage(request, reply, serviceName, session, Number(operationId), 200, note);
    },
  );

  app.post(
    '/secure/:serviceName/validation/:operationId',
    { schema: { ...hidden, params: OperationParams, body: Form }, config: { rateLimit: { max: 30, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const operationId = Number(request.params.operationId);
      const session = await s.user(request, reply, serviceName);
      if (!session) return reply;
      const form = request.body as FormFields;
      if (!(await s.csrfOk(request, reply, serviceName, form, session))) return reply;
      try {
        const done = await app.services.secure.validateOperation(
          serviceName,
          session,
          operationId,
          (form.token ?? '').trim(),
          request.clientIp,
        );
        return operationPage(request, reply, serviceName, session, operationId, 200, {
          kind: 'notice',
          text: `Operation ${done.operationId} is validated${done.taskId !== null ? `: task ${done.taskId} applies the change` : ''}.`,
        });
      } catch (err) {
        const failure = failureOf(err);
        return operationPage(request, reply, serviceName, session, operationId, failure.status, failure);
      }
    },
  );

  app.post(
    '/secure/:serviceName/validation/:operationId/resend',
    { schema: { ...hidden, params: OperationParams, body: Form }, config: { rateLimit: { max: 10, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { serviceName } = request.params;
      const operationId = Number(request.params.operationId);
      const session = await s.user(request, reply, serviceName);
      if (!session) return reply;
      if (!(await s.csrfOk(request, reply, serviceName, request.body as FormFields, session))) return reply;
      try {
        await app.services.secure.resendToken(serviceName, session, operationId, request.clientIp);
      } catch (err) {
        const failure = failureOf(err);
        return operationPage(request, reply, serviceName, session, operationId, failure.status, failure);
      }
      return reply.redirect(`${sessions.base(serviceName)}validation/${operationId}?resent=1`, 303);
    },
  );
}
