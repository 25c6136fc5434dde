import { ApiError } from '../../../http/errors.js';
import { html } from '../../../http/html.js';
import type { App } from '../../../http/types.js';
import { pageAssets } from './assets.js';
import { Screens } from './kit.js';
import { sendPage } from './layout.js';
import { loginScreens } from './login-screens.js';
import { PageSessions, type PageOptions } from './page-session.js';
import { password2faScreens } from './password-2fa-screens.js';
import { passwordLostScreens } from './password-lost-screens.js';
import { sessionsScreen } from './sessions-screen.js';
import { validationScreens } from './validation-screens.js';

/**
 * The certified interface for people, at `certifiedInterfaceUrl` (`/secure/{serviceName}/`): server-rendered pages on
 * the same services as the JSON API (`../routes.ts`), so the same access policy, lockout, answers and audit hold. The
 * session rides in a cookie; the JSON API takes only its bearer token, never the cookie. Out of the OpenAPI document.
 */
export default async function securePages(app: App, options: PageOptions) {
  // Every page's form posts `application/x-www-form-urlencoded`: this plugin's routes take forms (no other route does).
  app.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object), forms: true } as typeof route.config;
  });
  const screens = new Screens(app, new PageSessions(options));
  // A page of a service that does not exist is a generic "not found" before anything else (a form's refusal, a
  // redirection to its login): no page reflects a service name nobody created.
  app.addHook('preHandler', async (request, reply) => {
    const { serviceName } = (request.params ?? {}) as { serviceName?: string };
    if (serviceName === undefined) return;
    try {
      await app.services.services.find(serviceName);
    } catch (err) {
      if (!(err instanceof ApiError) || err.statusCode !== 404) throw err;
      await screens.notFound(reply);
      return reply;
    }
  });
  await pageAssets(app);
  loginScreens(screens);
  passwordLostScreens(screens);
  password2faScreens(screens);
  validationScreens(screens);
  sessionsScreen(screens);

  // The server's root and `/secure/` (the guide's address): where each service's interface is.
  const landing = async (_request: unknown, reply: Parameters<typeof sendPage>[0]) =>
    sendPage(
      reply,
      200,
      'Certified interface',
      { base: '/secure/', serviceName: 'pcc-2fa' },
      html`<p>
          Each Private Cloud service has its certified interface at <code>/secure/{serviceName}/</code> (mind the final "/"): log
          in, set up 2FA ("Password and 2FA Shared Secret"), validate operations, recover a lost password.
        </p>
        <form method="get" action="/secure/">
          <label for="service">Service name</label>
          <span class="hint" id="service-hint">e.g. pcc-192-0-2-1</span>
          <input
            id="service"
            aria-describedby="service-hint"
            name="service"
            required
            maxlength="63"
            pattern="[A-Za-z0-9._\\-]+"
          />
          <button type="submit">Open its certified interface</button>
        </form>
        <p>The API (OVH's <code>dedicatedCloud</code>) is documented at <a href="/docs">/docs</a>.</p>`,
    );
  app.get('/', { schema: { hide: true } }, landing);
  app.get('/secure/', { schema: { hide: true } }, async (request, reply) => {
    const service = (request.query as Record<string, unknown>).service;
    if (typeof service === 'string' && /^[A-Za-z0-9._-]{1,63}$/.test(service))
      return reply.redirect(`/secure/${encodeURIComponent(service)}/`, 303);
    return landing(request, reply);
  });
}
