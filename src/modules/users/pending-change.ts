import type { SecretBox } from '../../security/secret-box.js';

/**
 * A change a task will apply to a user (a new password hash, a new TOTP secret, a generated password to send). It
 * waits in the task's payload sealed with AES-256-GCM, bound to the user and the task name, and is erased once applied
 * or canceled.
 */
export interface PendingChange {
  passwordHash?: string;
  totpSecret?: string;
  /** A generated password, sent to the user once the change is applied. */
  sendPassword?: string;
  /** The session that asked: it survives the "other sessions end" rule. */
  keepSessionId?: number;
  /** What reaches or empowers the user (`changeProperties`): applied only by the task, once validated. */
  properties?: { phoneNumber?: string; email?: string; tokenValidator?: true };
}

export const changeAad = (userId: number, taskName: string) => `pending-change:user:${userId}:${taskName}`;

export const sealChange = (box: SecretBox, userId: number, taskName: string, change: PendingChange): string =>
  box.seal(JSON.stringify(change), changeAad(userId, taskName));

export const openChange = (box: SecretBox, userId: number, taskName: string, sealed: string): PendingChange =>
  JSON.parse(box.open(sealed, changeAad(userId, taskName))) as PendingChange;
