import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { BackgroundWork } from '../../core/background.js';
import type { Database, SessionScope, UserRow } from '../../db/types.js';
import { ApiError } from '../../http/errors.js';
import { lockEvents, type Admission, type Lockout } from '../../security/lockout.js';
import { contexts } from '../../security/contexts.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { LoginMetrics } from '../../metrics/registry.js';
import type { AllowedNetworksApi } from '../allowed-network/api.js';
import type { AuditLog } from '../audit/api.js';
import type { Operations } from '../operations/api.js';
import type { ServicesApi } from '../services/api.js';
import type { TasksApi } from '../tasks/api.js';
import type { UsersApi } from '../users/api.js';

/** What the certified interface is handed: infrastructure, and the other features through their interfaces. */
export interface SecureDeps {
  db: Kysely<Database>;
  box: SecretBox;
  clock: Clock;
  lockout: Lockout;
  audit: AuditLog;
  users: UsersApi;
  operations: Operations;
  allowedNetworks: AllowedNetworksApi;
  services: ServicesApi;
  tasks: TasksApi;
  background: BackgroundWork;
  /** Counts each login's outcome where it is decided. */
  metrics: LoginMetrics;
  /** The most live sessions one user holds (USER_SESSIONS_MAX): his login beyond it ends his oldest. */
  userSessionsMax: number;
}

export interface SessionUser {
  sessionId: number;
  scope: SessionScope;
  user: UserRow;
}

export const unauthorized = (message = 'Invalid login, password or 2FA code') =>
  new ApiError(401, 'Client::Unauthorized', message);
export const tooMany = (ms: number) =>
  new ApiError(429, 'Client::TooManyRequests', `Too many failed attempts: retry in ${Math.ceil(ms / 1000)} s`);
/** Audits, as the logged-in `user`, the locks his failed attempt started (`lockEvents`: a wrong token, code or try). */
export async function auditLocks(
  audit: AuditLog,
  who: { serviceName: string; user: Pick<UserRow, 'name' | 'user_id'>; ip: string },
  admission: Admission,
): Promise<void> {
  for (const { type, data } of lockEvents(admission)) {
    await audit.write({ serviceName: who.serviceName, actor: who.user.name, ip: who.ip, userId: who.user.user_id, type, data });
  }
}

export const forbidden = (message: string) => new ApiError(403, 'Client::Forbidden', message);

/** A login as typed: `alice` or `alice@pcc-1-2-3-4` (OVH's full login) for the service `pcc-1-2-3-4`. */
export function userNameOf(login: string, serviceName: string): string {
  const suffix = `@${serviceName}`;
  return login.endsWith(suffix) ? login.slice(0, -suffix.length) : login;
}

/**
 * Who the audit trail names for a request made under a typed login: the user when the login is one, otherwise
 * `unknown:` and a keyed fingerprint of what was typed. A login field sometimes receives a password; the trail keeps
 * no text typed by a stranger, and an operator can still tell one unknown login's attempts from another's.
 */
export function auditActor(box: SecretBox, serviceName: string, typed: string, user: UserRow | undefined): string {
  if (user) return user.name;
  return `unknown:${box.mac(contexts.auditedLogin(serviceName, typed)).toString('hex').slice(0, 16)}`;
}

/**
 * `userAccessPolicy: filtered`: from outside the service's allowed networks the certified interface does nothing for
 * anyone (a login, "password lost", a call with a live session). The refusal is audited as `access.refused`.
 */
export async function requireAllowedNetwork(
  deps: Pick<SecureDeps, 'allowedNetworks' | 'audit'>,
  service: { service_name: string; user_access_policy: string },
  ip: string,
  refused: { type: string; actor: string | null; userId: number | null; what: string },
): Promise<void> {
  if (service.user_access_policy !== 'filtered') return;
  await refuseOutsideAllowedNetworks(deps, service, ip, await deps.allowedNetworks.isAllowed(service.service_name, ip), refused);
}

/** `requireAllowedNetwork`, for a caller that already read whether `ip` is in the service's allowed networks. */
export async function refuseOutsideAllowedNetworks(
  deps: Pick<SecureDeps, 'audit'>,
  service: { service_name: string; user_access_policy: string },
  ip: string,
  allowed: boolean,
  refused: { type: string; actor: string | null; userId: number | null; what: string },
): Promise<void> {
  if (service.user_access_policy !== 'filtered' || allowed) return;
  await deps.audit.write({
    serviceName: service.service_name,
    type: refused.type,
    actor: refused.actor,
    ip,
    userId: refused.userId,
    data: { reason: 'accessPolicy', what: refused.what },
  });
  throw forbidden('Your IP address is not allowed to access this service');
}
