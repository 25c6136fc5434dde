import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';

/** The Fastify instance every route file receives: TypeBox schemas type the handlers. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** Who is calling the OVH-compatible API. `accountId: null` is an operator who sees every service. */
export interface Principal {
  accountId: number | null;
  login: string | null;
  /** The consumer key's credential when the call was signed; null for a bearer token or an operator. */
  credentialId?: number | null;
  /** The SHA-256 of the bearer token when the call carried one (`POST /auth/logout` revokes it). */
  bearerTokenHash?: Buffer;
  /** A route open without authentication (`/auth/time`): no account at all. */
  anonymous?: boolean;
}

/** Decides who calls the API, or throws the OVH authentication error. Runs once per request, before any route. */
export type Authenticate = (request: FastifyRequest) => Promise<Principal>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /** The client's address in one canonical spelling (see security/addresses.ts), set before any route runs. */
    clientIp: string;
  }
}
