import { createHash } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import type { AccessRule } from '../../src/db/types.js';
import type { App } from '../../src/http/types.js';
import type { Validity } from '../../src/features/ovh-auth/service.js';

/**
 * OVH's signature, written here independently of src/auth/signature.ts:
 * `"$1$" + sha1hex(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TIMESTAMP)`, the text encoded as UTF-8 (python-ovh).
 */
export function sign(parts: { as: string; ck: string; method: string; url: string; body: string; timestamp: number | string }) {
  const text = [parts.as, parts.ck, parts.method.toUpperCase(), parts.url, parts.body, String(parts.timestamp)].join('+');
  return `$1$${createHash('sha1').update(Buffer.from(text, 'utf8')).digest('hex')}`;
}

/** python-ovh's body: `json.dumps(data, separators=(",", ":"))`, so every non-ASCII character as `\uXXXX`. */
export function pythonJson(data: unknown): string {
  return JSON.stringify(data).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface OvhKeys {
  applicationKey: string;
  applicationSecret: string;
  consumerKey: string;
}

/** The Host header python-ovh sends for the endpoint `http://127.0.0.1:8080/1.0`. */
export const DEFAULT_HOST = '127.0.0.1:8080';

export interface SignedCallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The request target, with its `/1.0` or `/v1` prefix and query string. */
  url: string;
  /** A JSON value (serialized as python-ovh does) or the exact body text; GET/DELETE send none. */
  body?: unknown;
  /** Unix seconds. */
  timestamp: number;
  /** The Host header; `http://<host><url>` is what python-ovh signs. */
  host?: string;
  /** The base URL signed instead of `http://<host>` (node-ovh: `https://<host without port>`; a proxy's public URL). */
  signedBase?: string;
  remoteAddress?: string;
  /** Applied to the request after signing: how tests tamper with a signed call. */
  tamper?: (request: SignedRequest) => void;
}

export type SignedRequest = InjectOptions & { method: string; url: string; headers: Record<string, string>; payload?: string };

/** An inject request signed exactly as python-ovh signs it (or as another client does, with `signedBase`). */
export function signedRequest(keys: OvhKeys, options: SignedCallOptions): SignedRequest {
  const host = options.host ?? DEFAULT_HOST;
  const body = options.body === undefined ? '' : typeof options.body === 'string' ? options.body : pythonJson(options.body);
  const base = options.signedBase ?? `http://${host}`;
  const headers: Record<string, string> = {
    host,
    'x-ovh-application': keys.applicationKey,
    'x-ovh-consumer': keys.consumerKey,
    'x-ovh-timestamp': String(options.timestamp),
    'x-ovh-signature': sign({
      as: keys.applicationSecret,
      ck: keys.consumerKey,
      method: options.method,
      url: `${base}${options.url}`,
      body,
      timestamp: options.timestamp,
    }),
  };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const request: SignedRequest = { method: options.method, url: options.url, headers };
  if (options.body !== undefined) request.payload = body;
  if (options.remoteAddress) request.remoteAddress = options.remoteAddress;
  options.tamper?.(request);
  return request;
}

/** Unix seconds of the app's clock. */
export const nowSeconds = (app: App) => Math.floor(app.clock.now().getTime() / 1000);

/** Sends a call signed at the app's current time. */
export function callSigned(app: App, keys: OvhKeys, options: Omit<SignedCallOptions, 'timestamp'> & { timestamp?: number }) {
  return app.inject(signedRequest(keys, { ...options, timestamp: options.timestamp ?? nowSeconds(app) }));
}

/**
 * A new application of `login` and a consumer key requested for it through the service (not HTTP, so that tests
 * do not spend the route's rate limit), validated by the operator unless `validity` is `null`.
 */
export async function newCredential(
  app: App,
  login: string,
  options: { rules?: AccessRule[]; allowedIPs?: string[] | null; validity?: Validity | null; applicationName?: string } = {},
): Promise<OvhKeys & { validationUrl: string }> {
  const { auth } = app.services;
  const { applicationKey, applicationSecret } = await auth.createApplication(login, options.applicationName);
  const keys = await consumerKeyFor(app, applicationKey, options);
  return { applicationKey, applicationSecret, ...keys };
}

/** Another consumer key for an existing application. */
export async function consumerKeyFor(
  app: App,
  applicationKey: string,
  options: { rules?: AccessRule[]; allowedIPs?: string[] | null; validity?: Validity | null } = {},
): Promise<{ consumerKey: string; validationUrl: string }> {
  const { auth } = app.services;
  const requested = await auth.requestCredential(
    applicationKey,
    { accessRules: options.rules ?? [{ method: 'GET', path: '/*' }], allowedIPs: options.allowedIPs ?? null },
    'http://127.0.0.1:8080',
  );
  if (options.validity !== null) await auth.validateByOperator(requested.consumerKey, options.validity ?? 'unlimited');
  return { consumerKey: requested.consumerKey, validationUrl: requested.validationUrl };
}

/** The OVH authentication error body, exactly. */
export const authErrorBody = (status: 400 | 403, errorCode: string, message: string) => ({
  class: status === 400 ? 'Client::BadRequest' : 'Client::Forbidden',
  errorCode,
  httpCode: status === 400 ? '400 Bad Request' : '403 Forbidden',
  message,
});
