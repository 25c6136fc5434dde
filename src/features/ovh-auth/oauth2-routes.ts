import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
});
const OAuthError = Type.Object({ error: Type.String(), error_description: Type.Optional(Type.String()) });

/**
 * OAuth2 client credentials (RFC 6749 §4.4) for Swagger UI's Authorize button and curl. The client authenticates with
 * HTTP Basic or with `client_id`/`client_secret` in the body (form or JSON). Errors follow RFC 6749 §5.2.
 */
export default async function oauth2Routes(app: App) {
  app.post('/auth/oauth2/token', {
    config: { auth: 'none', forms: true, rateLimit: { max: 30, timeWindow: 60_000 } },
    schema: {
      tags: ['auth'],
      summary: 'Get a bearer token (OAuth2 client credentials)',
      body: Type.Optional(
        Type.Object({
          grant_type: Type.Optional(Type.String({ maxLength: 64 })),
          client_id: Type.Optional(Type.String({ maxLength: 128 })),
          client_secret: Type.Optional(Type.String({ maxLength: 256 })),
          scope: Type.Optional(Type.String({ maxLength: 1024 })),
        }),
      ),
      response: { 200: TokenResponse, 400: OAuthError, 401: OAuthError },
    },
    // A body that does not parse or validate is RFC 6749's invalid_request too (the app's `{class, message}` does not
    // fit the 400 schema above, and turned into `{"error":"Bad Request"}`); anything else goes to the app's handler.
    errorHandler: (error, _request, reply) => {
      if (error.validation || error.statusCode === 400) {
        return reply.code(400).header('Cache-Control', 'no-store').header('Pragma', 'no-cache').send({
          error: 'invalid_request',
          error_description: 'Send grant_type, client_id and client_secret as a form or JSON body',
        });
      }
      throw error;
    },
    handler: async (request, reply) => {
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      const body = request.body ?? {};
      if (!body.grant_type) {
        return reply.code(400).send({ error: 'invalid_request', error_description: 'grant_type is required' });
      }
      if (body.grant_type !== 'client_credentials') {
        return reply
          .code(400)
          .send({ error: 'unsupported_grant_type', error_description: 'grant_type must be client_credentials' });
      }
      let clientId = body.client_id;
      let clientSecret = body.client_secret;
      const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(request.headers.authorization ?? '');
      if (basic?.[1]) {
        const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) {
          try {
            clientId = decodeURIComponent(decoded.slice(0, colon));
            clientSecret = decodeURIComponent(decoded.slice(colon + 1));
          } catch {
            // a malformed %-escape threw a URIError: a 500 before
            reply.header('WWW-Authenticate', 'Basic realm="pcc-2fa"');
            return reply.code(401).send({ error: 'invalid_client', error_description: 'Malformed HTTP Basic credentials' });
          }
        }
      }
      if (!clientId || !clientSecret) {
        return reply.code(400).send({ error: 'invalid_request', error_description: 'client_id and client_secret are required' });
      }
      const token = await app.services.auth.issueToken(clientId, clientSecret);
      if (!token) {
        reply.header('WWW-Authenticate', 'Basic realm="pcc-2fa"');
        return reply.code(401).send({ error: 'invalid_client', error_description: 'Unknown client or wrong secret' });
      }
      return token;
    },
  });
}
