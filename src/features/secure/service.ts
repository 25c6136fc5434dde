import type { Transaction } from 'kysely';
import type { Database } from '../../db/types.js';
import type { Sessions } from './api.js';
import type { SecureDeps, SessionUser } from './context.js';
import { EnrollmentService } from './enrollment.js';
import { LoginService, type LoginInput } from './login.js';
import { OperationValidationService } from './operation-validation.js';
import { PasswordResetService } from './password-reset.js';
import { SessionService } from './sessions.js';
import { UnlockService } from './unlock.js';

export type { LoginInput } from './login.js';
export type { SessionUser } from './context.js';

/**
 * The guide's certified interface, one part per screen: sessions and login, "Password and 2FA Shared Secret",
 * "Operation validation", "Password lost". The routes call this facade.
 */
export class SecureService implements Sessions {
  readonly #sessions: SessionService;
  readonly #login: LoginService;
  readonly #enrollment: EnrollmentService;
  readonly #operations: OperationValidationService;
  readonly #resets: PasswordResetService;
  readonly #unlock: UnlockService;

  constructor(private readonly deps: SecureDeps) {
    this.#sessions = new SessionService(deps);
    this.#resets = new PasswordResetService(deps);
    this.#login = new LoginService(deps, this.#sessions, this.#resets);
    this.#enrollment = new EnrollmentService(deps);
    this.#operations = new OperationValidationService(deps);
    this.#unlock = new UnlockService(deps);
  }

  login = (serviceName: string, input: LoginInput, ip: string) => this.#login.login(serviceName, input, ip);
  authenticate = (serviceName: string, token: string, ip: string) => this.#sessions.authenticate(serviceName, token, ip);
  listSessions = (session: SessionUser) => this.#sessions.list(session);
  logout = (session: SessionUser, ip: string | null = null) => this.#sessions.logout(session, ip);
  endForUser = (trx: Transaction<Database>, userId: number, reason: string, now: Date, keep?: number) =>
    this.#sessions.endForUser(trx, userId, reason, now, keep);
  startEnrollment = (serviceName: string, session: SessionUser) => this.#enrollment.start(serviceName, session);
  enrollmentOffer = (session: SessionUser, enrollmentId: string) => this.#enrollment.offer(session, enrollmentId);
  changeCredentials: EnrollmentService['changeCredentials'] = (...args) => this.#enrollment.changeCredentials(...args);
  describeOperation: OperationValidationService['describe'] = (...args) => this.#operations.describe(...args);
  validateOperation: OperationValidationService['validate'] = (...args) => this.#operations.validate(...args);
  resendToken: OperationValidationService['resend'] = (...args) => this.#operations.resend(...args);
  unlockUser: UnlockService['unlockUser'] = (...args) => this.#unlock.unlockUser(...args);
  unlockUserById: UnlockService['unlockUserById'] = (...args) => this.#unlock.unlockUserById(...args);
  unlockAddress: UnlockService['unlockAddress'] = (...args) => this.#unlock.unlockAddress(...args);
  passwordLost = (serviceName: string, login: string, ip: string) => this.#resets.passwordLost(serviceName, login, ip);
}
