import { html } from '../../../http/html.js';
import { Params, type Screens } from './kit.js';
import { utc } from './layout.js';

/** The user's sessions on the service: where and since when he is logged in; the log out button is in the header. */
export function sessionsScreen(s: Screens) {
  const { app } = s;
  app.get('/secure/:serviceName/sessions', { schema: { hide: true, params: Params } }, async (request, reply) => {
    const { serviceName } = request.params;
    const session = await s.user(request, reply, serviceName, 'sessions');
    if (!session) return reply;
    const list = await app.services.secure.listSessions(session);
    const rows = list.map(
      (r) => html`<tr${r.current ? html` class="current"` : ''}>
  <td>${utc(r.createdAt)}${r.current ? html` <strong>(this one)</strong>` : ''}</td>
  <td>${r.ip ?? '—'}</td>
  <td>${utc(r.lastSeenAt)}</td>
  <td>${utc(r.expiresAt)}</td>
  <td>${r.scope === 'full' ? 'full' : 'credentials renewal'}</td>
</tr>`,
    );
    return s.page(
      reply,
      200,
      'Sessions',
      s.nav(serviceName, request, session),
      html`<p>
          Your live sessions on ${serviceName}. A new password ends all the others once it applies; the service ends sessions idle
          for longer than its timeout.
        </p>
        <table>
          <caption>
            Live sessions of ${session.user.name}
          </caption>
          <thead>
            <tr>
              <th scope="col">Logged in</th>
              <th scope="col">From</th>
              <th scope="col">Last seen</th>
              <th scope="col">Ends</th>
              <th scope="col">Scope</th>
            </tr>
          </thead>
          <tbody>
            ${rows}
          </tbody>
        </table>
        <form method="post" action="${s.sessions.base(serviceName)}logout">
          <input type="hidden" name="csrf" value="${s.sessions.sessionCsrf(serviceName, session, request)}" />
          <button type="submit">Log out of this session</button>
        </form>`,
    );
  });
}
