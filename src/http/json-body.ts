import type { FastifyInstance } from 'fastify';
import sjson from 'secure-json-parse';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes HTML forms (`application/x-www-form-urlencoded`) besides JSON; any other answers 415. */
    forms?: boolean;
  }
  interface FastifyRequest {
    /** The body exactly as received: OVH signatures are computed over these bytes. */
    rawBody?: string;
  }
}

/**
 * JSON bodies are kept raw for signature checks and parsed here. An empty body is accepted (OVH's Node client sends
 * `Content-Type: application/json` with no body on POSTs such as `enable`).
 */
export function registerJsonBody(app: FastifyInstance): void {
  // Fastify's text/plain parser reads a body without keeping its bytes: a signature would then cover an empty body.
  // Nothing here takes text, so only JSON and forms are parsed; anything else is a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
    if (text.trim() === '') return done(null, undefined);
    if (text.includes('\\u0000')) return done(nulError(), undefined);
    try {
      // As Fastify's own parser does: `__proto__` and `constructor.prototype` keys are refused, never merged.
      done(null, sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (err) {
      const forbidden = (err as Error).message.includes('forbidden');
      const error = new Error(
        forbidden ? 'Body holds a forbidden key (__proto__ or constructor.prototype)' : 'Body is not valid JSON',
      ) as Error & { statusCode: number; code: string };
      error.statusCode = 400;
      error.code = 'FST_ERR_CTP_INVALID_JSON';
      done(error, undefined);
    }
  });
  // A POST or PUT without a body is an empty object: OVH's clients send none when a call has no parameters (enable,
  // changeProperties with nothing to change), and a missing required field is then reported by its name.
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body === undefined && (request.method === 'POST' || request.method === 'PUT')) request.body = {};
    done();
  });
  // HTML forms (the consumer-key validation page) and OAuth2 token requests, on the routes that say so: elsewhere a
  // form would be read as a JSON body of strings, which an HTML page of any origin can send without a preflight.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    if (request.routeOptions.config?.forms !== true) {
      const error = new Error('Unsupported Content-Type') as Error & { statusCode: number; code: string };
      error.statusCode = 415;
      error.code = 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
      return done(error, undefined);
    }
    request.rawBody = body as string;
    const fields = Object.fromEntries(new URLSearchParams(body as string));
    if (Object.entries(fields).some(([k, v]) => k.includes('\0') || v.includes('\0'))) return done(nulError(), undefined);
    done(null, fields);
  });
}

/** PostgreSQL stores no NUL character, and no field here may hold one: a 400 before any code reads the body. */
function nulError() {
  const error = new Error('Body holds a NUL character (\\u0000)') as Error & { statusCode: number; code: string };
  error.statusCode = 400;
  error.code = 'FST_ERR_CTP_INVALID_CONTENT';
  return error;
}
