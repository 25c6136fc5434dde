import type { Transaction } from 'kysely';
import type { Database, UserRow } from '../../db/types.js';
import type { Actor } from '../../http/actor.js';
import type { TaskDto } from '../../http/schemas.js';
import type { RecipientResolver } from '../operations/api.js';

export const USER_TASKS = {
  create: 'addUser',
  remove: 'removeUser',
  changeProperties: 'changePropertiesUser',
  changePassword: 'changePasswordUser',
  changeCredentials: 'changeCredentialsUser',
  enable: 'enableUser',
  disable: 'disableUser',
  confirmPhoneNumber: 'confirmPhoneNumberUser',
  changeRight: 'changeRightUser',
  addObjectRight: 'addObjectRightUser',
  removeObjectRight: 'removeObjectRightUser',
} as const;

/** The kind of the operation that confirms a phone number (it holds no task). */
export const CONFIRM_PHONE_NUMBER = 'confirmPhoneNumber';

/**
 * A change a task will apply to a user (a new password hash, a new TOTP secret, a generated password to send). It
 * waits in the task's payload sealed with AES-256-GCM, bound to the task, and is erased once applied or canceled.
 */
export interface PendingChange {
  passwordHash?: string;
  totpSecret?: string;
  /** A generated password, sent to the user once the change is applied. */
  sendPassword?: string;
  /** The session that asked: it survives the "other sessions end" rule. */
  keepSessionId?: number;
  /** What reaches or empowers the user (`changeProperties`): applied only by the task, once validated. */
  properties?: { phoneNumber?: string; email?: string; tokenValidator?: boolean };
}

/** A task of a user change, and whether it must first wait for operation validation. */
export interface UserTaskRequest {
  serviceName: string;
  user: UserRow;
  name: string;
  description: string;
  change?: PendingChange;
  actor: Actor;
  /** The user asking, for the certified interface; null for an API account. */
  requester: UserRow | null;
  /** Whether a requester who is a token validator receives the token himself (default); if not, the validators do. */
  tokenToRequester?: boolean;
  /** Always wait for validation (certified interface); otherwise as advancedSecurity says (see `Approval`). */
  forceValidation?: boolean;
  summary: string;
}

/** Users as the certified interface sees them. */
export interface UsersApi {
  findByName(serviceName: string, name: string): Promise<UserRow | undefined>;
  findById(userId: number): Promise<UserRow | undefined>;
  createTask(trx: Transaction<Database>, req: UserTaskRequest): Promise<TaskDto & { operationId: number | null }>;
  /** Throws 400 naming `field` when the password breaks the policy or repeats one of the user's last passwords. */
  checkNewPassword(serviceName: string, userId: number | null, password: string, field?: string): Promise<void>;
  tokenRecipients: RecipientResolver;
}

/**
 * States in which a user can log in and validate operations. A change asked for but not applied yet (`deleting`,
 * `toDisable`) takes effect when its task applies it, not before: a removal waiting for a token validator must not
 * lock the user out meanwhile (an API caller could otherwise lock every user out, again and again).
 */
export const ACTIVE_STATES = ['delivered', 'deleting'] as const;
export const ACTIVE_ACTIVATIONS = ['enabled', 'toDisable'] as const;

/**
 * Whether the user may log in and validate operations. Given `now`, a user whose expiration date has passed is not,
 * even before the worker disables him.
 */
export const isActiveUser = (
  user: Pick<UserRow, 'state' | 'activation_state' | 'deleted_at'> & { expiration_date?: Date | null },
  now?: Date,
): boolean =>
  user.deleted_at === null &&
  !(now && user.expiration_date && user.expiration_date.getTime() <= now.getTime()) &&
  (ACTIVE_STATES as readonly string[]).includes(user.state) &&
  (ACTIVE_ACTIVATIONS as readonly string[]).includes(user.activation_state);
