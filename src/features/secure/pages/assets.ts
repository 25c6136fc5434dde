import type { App } from '../../../http/types.js';
import { ASSETS } from './layout.js';

/** The pages' only style sheet: no inline style anywhere (the CSP allows none). */
const CSS = `:root{color-scheme:light;--ink:#102a43;--muted:#486581;--accent:#0050d7;--bad:#b00020;--ok:#0b6e4f;--line:#d9e2ec}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#f5f7fa}
header{background:#fff;border-bottom:1px solid var(--line);padding:.6rem 1rem}
.brand{margin:0;color:var(--muted)}
nav{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:1rem;margin:.4rem 0;padding:0}
nav form.logout{margin:0}
main{max-width:42rem;margin:1.5rem auto;padding:1.5rem;background:#fff;border:1px solid var(--line);border-radius:6px}
h1{margin-top:0;font-size:1.5rem}
a{color:var(--accent)}
.skip{position:absolute;left:-999px}
.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.3rem .6rem;z-index:1}
label{display:block;font-weight:600;margin:1rem 0 .1rem}
.hint{display:block;color:var(--muted);font-size:.9rem;margin-bottom:.25rem}
input{width:100%;padding:.55rem;border:1px solid #9fb3c8;border-radius:4px;font:inherit}
input:focus,button:focus,a:focus{outline:3px solid #ffbf47;outline-offset:1px}
button{margin-top:1.2rem;padding:.55rem 1.2rem;border:0;border-radius:4px;background:var(--accent);color:#fff;font:inherit;cursor:pointer}
button.secondary{background:#fff;color:var(--accent);border:1px solid var(--accent)}
nav button{margin:0;padding:.3rem .8rem}
.message{padding:.6rem .8rem;border-radius:4px}
.error{background:#fde8eb;color:var(--bad);border:1px solid var(--bad)}
.notice{background:#e3f9ef;color:var(--ok);border:1px solid var(--ok)}
.explain{background:#fff8e1;border:1px solid #f0b400;padding:.6rem .8rem;border-radius:4px}
.qr{display:block;margin:.5rem 0;image-rendering:pixelated;border:1px solid var(--line)}
code.secret{display:inline-block;font-size:1.15rem;letter-spacing:.05em;padding:.3rem .5rem;background:#eef2f7;word-break:break-all}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
ol.steps li{margin:.3rem 0}
`;

/**
 * The pages work without it; it adds two comforts: a countdown of what expires (from the server's own reckoning of
 * the seconds left, so the browser's clock does not matter), and a check that the new password was typed twice alike.
 */
const JS = `'use strict';
document.addEventListener('DOMContentLoaded', function () {
  var start = Date.now();
  var counters = document.querySelectorAll('[data-seconds-left]');
  function tick() {
    counters.forEach(function (el) {
      var left = Number(el.getAttribute('data-seconds-left')) - Math.floor((Date.now() - start) / 1000);
      if (left <= 0) { el.textContent = 'expired'; return; }
      el.textContent = Math.floor(left / 60) + ' min ' + (left % 60) + ' s left';
    });
  }
  if (counters.length) { tick(); setInterval(tick, 1000); }
  document.querySelectorAll('input[data-same-as]').forEach(function (el) {
    var other = document.getElementById(el.getAttribute('data-same-as'));
    function check() { el.setCustomValidity(other && el.value !== other.value ? 'The two passwords differ' : ''); }
    el.addEventListener('input', check);
    if (other) other.addEventListener('input', check);
  });
});
`;

/** A padlock, so that browsers find an icon and ask for no `/favicon.ico`. */
const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="2" y="7" width="12" height="8" rx="1" fill="#0050d7"/><path d="M5 7V5a3 3 0 0 1 6 0v2" stroke="#0050d7" stroke-width="2" fill="none"/></svg>`;

/** Serves the style sheet and the script the pages load (the CSP allows no inline code). */
export async function pageAssets(app: App) {
  const serve = (path: string, type: string, body: string) =>
    app.get(path, { schema: { hide: true } }, async (_request, reply) =>
      reply.type(type).header('Cache-Control', 'public, max-age=3600').send(body),
    );
  serve(ASSETS.css, 'text/css; charset=utf-8', CSS);
  serve(ASSETS.js, 'text/javascript; charset=utf-8', JS);
  serve(ASSETS.icon, 'image/svg+xml', ICON);
}
