import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { App } from '../../http/types.js';
import { VALIDITIES, type Validity } from './service.js';

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const VALIDITY_LABELS: Record<Validity, string> = { '1h': '1 hour', '1d': '1 day', '30d': '1 month', unlimited: 'Unlimited' };

function page(reply: FastifyReply, status: number, title: string, body: string) {
  return reply
    .code(status)
    .header(
      'Content-Security-Policy',
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'",
    )
    .header('X-Frame-Options', 'DENY')
    .header('Referrer-Policy', 'no-referrer')
    .header('Cache-Control', 'no-store')
    .type('text/html; charset=utf-8').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · pcc-2fa</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#123}
label{display:block;margin:.8rem 0 .2rem}input,select{width:100%;padding:.5rem;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.6rem 1.2rem}code{background:#eef;padding:0 .2rem}.err{color:#a00}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`);
}

const Query = Type.Object({ credentialToken: Type.String({ maxLength: 64 }) });
const Form = Type.Object({
  credentialToken: Type.String({ maxLength: 64 }),
  login: Type.String({ maxLength: 128 }),
  password: Type.String({ maxLength: 256 }),
  validity: Type.Optional(Type.String({ maxLength: 16 })),
  decision: Type.Optional(Type.String({ maxLength: 16 })),
});

/**
 * The page at a consumer key's `validationUrl`: the account holder signs in and grants (or refuses) the access rules
 * the application asked for, for a chosen validity.
 */
export default async function validationPage(app: App) {
  const form = async (reply: FastifyReply, token: string, error?: string) => {
    const cred = await app.services.auth.pendingValidation(token);
    if (!cred)
      return page(reply, 404, 'Unknown or expired request', '<p>This validation link is unknown, already used, or expired.</p>');
    const rules = cred.rules.map((r) => `<li><code>${escapeHtml(r.method)} ${escapeHtml(r.path)}</code></li>`).join('');
    const ips = cred.allowed_ips
      ? `<p>Only from: ${cred.allowed_ips.map((ip) => `<code>${escapeHtml(ip)}</code>`).join(', ')}</p>`
      : '';
    const options = (Object.keys(VALIDITIES) as Validity[])
      .map((v) => `<option value="${v}"${v === '1d' ? ' selected' : ''}>${VALIDITY_LABELS[v]}</option>`)
      .join('');
    return page(
      reply,
      error ? 401 : 200,
      'Authorize an application',
      `<p>The application <strong>${escapeHtml(cred.application_name || cred.application_key)}</strong> asks to call, on your behalf:</p>
<ul>${rules}</ul>${ips}
${error ? `<p class="err" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="./">
<input type="hidden" name="credentialToken" value="${escapeHtml(token)}">
<label for="login">Account login</label><input id="login" name="login" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="validity">Validity</label><select id="validity" name="validity">${options}</select>
<button type="submit" name="decision" value="validated">Authorize</button>
<button type="submit" name="decision" value="refused">Refuse</button>
</form>`,
    );
  };

  app.get('/auth/', { schema: { hide: true, querystring: Query } }, async (request, reply) =>
    form(reply, request.query.credentialToken),
  );

  app.post(
    '/auth/',
    { schema: { hide: true, body: Form }, config: { forms: true, rateLimit: { max: 10, timeWindow: 60_000 } } },
    async (request, reply) => {
      const { credentialToken, login, password } = request.body;
      const validity = (request.body.validity ?? '1d') as Validity;
      // own keys only: `in` also saw `constructor` or `toString`, whose expiry was an invalid date (a 500)
      if (!Object.hasOwn(VALIDITIES, validity)) return form(reply, credentialToken, 'Choose a validity from the list.');
      const decision = request.body.decision === 'refused' ? 'refused' : 'validated';
      const result = await app.services.auth.decideValidation({
        validationToken: credentialToken,
        login,
        password,
        validity,
        decision,
        ip: request.clientIp,
      });
      if (!result.ok) {
        if (result.reason === 'locked') {
          reply.header('Retry-After', String(Math.ceil(result.waitMs / 1000)));
          return page(
            reply,
            429,
            'Too many failed attempts',
            `<p>Too many wrong passwords: try again in ${Math.ceil(result.waitMs / 1000)} seconds.</p>`,
          );
        }
        return result.reason === 'credentials'
          ? form(reply, credentialToken, 'Wrong login or password.')
          : page(reply, 404, 'Unknown or expired request', '<p>This validation link is unknown, already used, or expired.</p>');
      }
      // URL.href percent-encodes what a Location header cannot carry (a redirection stored before it was checked).
      if (decision === 'validated' && result.redirection) return reply.redirect(new URL(result.redirection).href, 303);
      return decision === 'validated'
        ? page(
            reply,
            200,
            'Application authorized',
            '<p>The application can now call the API with its consumer key. You can close this page.</p>',
          )
        : page(reply, 200, 'Request refused', '<p>The application was refused. You can close this page.</p>');
    },
  );
}
