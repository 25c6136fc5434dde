import type { FastifyReply } from 'fastify';
import { html, type HtmlValue, type SafeHtml } from '../../../http/html.js';

/**
 * The pages' Content-Security-Policy: scripts, styles and images only from this origin (the two files of assets.ts,
 * the QR code's PNG), no inline script or style, forms posting only here, never in a frame.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'none'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const ASSETS = {
  css: '/assets/secure-pages.css',
  js: '/assets/secure-pages.js',
  icon: '/assets/secure-pages-icon.svg',
} as const;

export interface Nav {
  /** `/secure/{serviceName}/` */
  base: string;
  serviceName: string;
  /** The logged-in user, with the CSRF token of the logout form; absent on the anonymous pages. */
  user?: { name: string; csrf: string; renewal: boolean };
}

export interface PageMessage {
  kind: 'error' | 'notice';
  text: string;
}

export function message(m: PageMessage | undefined): SafeHtml | undefined {
  if (!m) return undefined;
  return m.kind === 'error'
    ? html`<p class="message error" role="alert">${m.text}</p>`
    : html`<p class="message notice" role="status">${m.text}</p>`;
}

function navigation(nav: Nav): SafeHtml {
  if (!nav.user) return html``;
  const b = nav.base;
  return html`<nav aria-label="Certified interface">
    <ul>
      <li><a href="${b}">Home</a></li>
      <li><a href="${b}password-2fa">Password and 2FA Shared Secret</a></li>
      <li><a href="${b}validation">Operation validation</a></li>
      <li><a href="${b}sessions">Sessions</a></li>
    </ul>
    <form method="post" action="${b}logout" class="logout">
      <input type="hidden" name="csrf" value="${nav.user.csrf}" />
      <span>${nav.user.name}</span> <button type="submit">Log out</button>
    </form>
  </nav>`;
}

/** Sends one page: the strict CSP, never cached, the body escaped wherever it came from. */
export function sendPage(reply: FastifyReply, status: number, title: string, nav: Nav, body: HtmlValue) {
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · ${nav.serviceName} · Certified interface</title>
        <link rel="icon" href="${ASSETS.icon}" type="image/svg+xml" />
        <link rel="stylesheet" href="${ASSETS.css}" />
        <script src="${ASSETS.js}" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to the content</a>
        <header>
          <p class="brand">Hosted Private Cloud <strong>${nav.serviceName}</strong> · certified interface</p>
          ${navigation(nav)}
        </header>
        <main id="main">
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `;
  return reply
    .code(status)
    .header('Content-Security-Policy', PAGE_CSP)
    .header('Cache-Control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page.text);
}

/** A duration for people: "9 min 59 s", "45 s". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** A date as UTC, to the second: the pages show no time zone guesswork. */
export const utc = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
