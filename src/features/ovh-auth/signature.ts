import { hash } from 'node:crypto';
import { constantTimeEqual } from '../../security/tokens.js';

/** OVH's signature: `"$1$" + sha1hex(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TIMESTAMP)`. */
export function ovhSignature(parts: {
  applicationSecret: string;
  consumerKey: string;
  method: string;
  url: string;
  body: string;
  timestamp: string;
}): string {
  const text = [parts.applicationSecret, parts.consumerKey, parts.method, parts.url, parts.body, parts.timestamp].join('+');
  return `$1$${hash('sha1', text, 'hex')}`;
}

/**
 * The URLs a client may have signed for this request. Clients differ: go-ovh and python-ovh sign the endpoint as
 * configured (scheme, host and port, as the request addressed us), the official Node client signs
 * `https://<host without port><path>`, and behind a proxy clients sign the public base URL.
 */
export function candidateUrls(input: {
  protocol: string;
  host: string | undefined;
  rawUrl: string;
  publicUrl?: string;
}): string[] {
  const urls = new Set<string>();
  if (input.host) {
    urls.add(`${input.protocol}://${input.host}${input.rawUrl}`);
    urls.add(`https://${stripPort(input.host)}${input.rawUrl}`);
  }
  if (input.publicUrl) urls.add(`${input.publicUrl}${input.rawUrl}`);
  return [...urls];
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

export function signatureMatches(expected: string[], given: string): boolean {
  // Every candidate is compared, so the time taken does not depend on which one matched.
  let ok = false;
  for (const candidate of expected) ok = constantTimeEqual(candidate, given) || ok;
  return ok;
}
