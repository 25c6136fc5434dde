import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** A timestamptz: read as a Date, written as a Date or an SQL expression. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface AccountTable {
  account_id: Generated<number>;
  login: string;
  password_hash: string | null;
  created_at: Generated<Date>;
}

export interface ApplicationTable {
  application_id: Generated<number>;
  account_id: number;
  application_key: string;
  secret_ciphertext: string;
  name: Generated<string>;
  created_at: Generated<Date>;
  revoked_at: NullableTimestamp;
}

export type CredentialState = 'pendingValidation' | 'validated' | 'refused' | 'expired';
export interface AccessRule {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  path: string;
}

export interface CredentialTable {
  credential_id: Generated<number>;
  application_id: number;
  account_id: number | null;
  consumer_key_hash: Buffer;
  validation_token_hash: Buffer | null;
  state: CredentialState;
  rules: ColumnType<AccessRule[], string, string>;
  allowed_ips: ColumnType<string[] | null, string | null, string | null>;
  redirection: string | null;
  created_at: Generated<Date>;
  validation_expires_at: Timestamp;
  validated_at: NullableTimestamp;
  expires_at: NullableTimestamp;
  last_use: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface OauthClientTable {
  client_id: string;
  account_id: number;
  secret_hash: Buffer;
  name: Generated<string>;
  created_at: Generated<Date>;
  revoked_at: NullableTimestamp;
}

export interface OauthTokenTable {
  token_hash: Buffer;
  client_id: string;
  account_id: number;
  created_at: Generated<Date>;
  expires_at: Timestamp;
}

export interface ServiceTable {
  service_name: string;
  account_id: number;
  description: Generated<string>;
  state: Generated<string>;
  advanced_security: Generated<boolean>;
  user_access_policy: Generated<'filtered' | 'open'>;
  user_limit_concurrent_session: Generated<number>;
  user_logout_policy: Generated<'first' | 'last'>;
  user_session_timeout: Generated<number>;
  two_fa_state: Generated<'disabled' | 'enabled'>;
  created_at: Generated<Date>;
}

export type WhitelistState = 'enabled' | 'enabling' | 'error' | 'migrating' | 'removed' | 'removing';

export interface TwoFaWhitelistTable {
  id: Generated<number>;
  service_name: string;
  ip: string;
  cidr_netmask: number;
  network: ColumnType<string, never, never>;
  description: string;
  state: WhitelistState;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export const TASK_STATES = [
  'canceled',
  'doing',
  'done',
  'error',
  'fixing',
  'toCancel',
  'toCreate',
  'todo',
  'unknown',
  'waitingForChilds',
  'waitingTodo',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export interface TaskTable {
  task_id: Generated<number>;
  service_name: string;
  name: string;
  type: string;
  state: TaskState;
  progress: Generated<number>;
  description: string | null;
  created_by: string | null;
  created_from: string | null;
  execution_date: Generated<Date>;
  last_modification_date: NullableTimestamp;
  end_date: NullableTimestamp;
  maintenance_date_from: NullableTimestamp;
  maintenance_date_to: NullableTimestamp;
  datacenter_id: number | null;
  filer_id: number | null;
  host_id: number | null;
  network: string | null;
  network_access_id: number | null;
  order_id: number | null;
  parent_task_id: number | null;
  user_id: number | null;
  vlan_id: number | null;
  payload: ColumnType<Record<string, unknown>, string | undefined, string>;
  attempts: Generated<number>;
  locked_by: string | null;
  locked_until: NullableTimestamp;
  last_error: string | null;
  created_at: Generated<Date>;
}

export interface AuditEventTable {
  id: Generated<number>;
  service_name: string | null;
  type: string;
  actor: string | null;
  ip: string | null;
  data: ColumnType<Record<string, unknown>, string | undefined, never>;
  created_at: Generated<Date>;
}

export interface Database {
  account: AccountTable;
  service: ServiceTable;
  two_fa_whitelist: TwoFaWhitelistTable;
  task: TaskTable;
  audit_event: AuditEventTable;
  application: ApplicationTable;
  credential: CredentialTable;
  oauth_client: OauthClientTable;
  oauth_token: OauthTokenTable;
}

export type ServiceRow = Selectable<ServiceTable>;
export type WhitelistRow = Selectable<TwoFaWhitelistTable>;
export type TaskRow = Selectable<TaskTable>;
export type NewTask = Insertable<TaskTable>;
export type { Timestamp };
