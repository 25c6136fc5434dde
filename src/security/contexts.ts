/**
 * Every encryption context of the service, in one place: the associated data that binds a sealed secret to the row it
 * belongs to (a ciphertext copied to another row does not open), and the inputs of the keyed hashes of short codes.
 * A context, once used for stored data, never changes: the rows sealed under it would stop opening.
 */
export const contexts = {
  /** An OVH application secret, bound to its application key. */
  applicationSecret: (applicationKey: string) => `application:${applicationKey}`,
  /** A user's TOTP secret, bound to the user. */
  totpSecret: (userId: number) => `totp:user:${userId}`,
  /** A TOTP secret offered by an enrollment, bound to the enrollment. */
  enrollmentSecret: (enrollmentId: string) => `enrollment:${enrollmentId}`,
  /** The pending change a task will apply, bound to the task (one change never opens under another task). */
  pendingChange: (taskId: number) => `pending-change:task:${taskId}`,
  /** The form used before changes were bound to their task: still opened for tasks queued before that. */
  legacyPendingChange: (userId: number, taskName: string) => `pending-change:user:${userId}:${taskName}`,
  /** A queued message's body, bound to its recipient and operation. */
  outboxBody: (recipient: string, operationId: number | null) => `outbox:${recipient}:${operationId ?? ''}`,
  /** Keyed-hash input of an operation's SMS token. */
  operationToken: (operationId: number, token: string) => `operation:${operationId}:${token}`,
  /** Keyed-hash input of a "password lost" reset code. */
  resetCode: (userId: number, code: string) => `reset:${userId}:${code}`,
  /** Keyed-hash input of a login nobody has, as the audit trail fingerprints it. */
  auditedLogin: (serviceName: string, typed: string) => `audited-login:${serviceName}:${typed}`,
  /** Keyed-hash input of a page form's CSRF token, bound to the session (or the anonymous form cookie) it serves. */
  pageCsrf: (serviceName: string, binding: 'session' | 'anonymous', value: string) =>
    `page-csrf:${serviceName}:${binding}:${value}`,
} as const;

/** The context the task's sealed change was made under: its task id, or the user and task name before that. */
export function pendingChangeContext(task: { task_id: number; name: string; payload: Record<string, unknown> }): string {
  if (task.payload.changeBinding === 'task') return contexts.pendingChange(task.task_id);
  const userId = task.payload.userId;
  if (typeof userId !== 'number') throw new Error('task payload has no userId');
  return contexts.legacyPendingChange(userId, task.name);
}
