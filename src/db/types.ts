import type { ColumnType, Generated, Selectable } from 'kysely';

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
  approval_armed_at: NullableTimestamp;
  datacenter_id: Generated<number>;
  ssl_v3: Generated<boolean>;
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
  user_id: number | null;
  data: ColumnType<Record<string, unknown>, string | undefined, never>;
  created_at: Generated<Date>;
}

export interface PccUserTable {
  user_id: Generated<number>;
  service_name: string;
  name: string;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  phone_number: string | null;
  phone_confirmed: Generated<boolean>;
  is_token_validator: Generated<boolean>;
  state: Generated<'creating' | 'deleting' | 'delivered' | 'error'>;
  activation_state: Generated<'disabled' | 'disabling' | 'enabled' | 'enabling' | 'toDisable' | 'toEnable'>;
  can_manage_ip_fail_overs: Generated<boolean>;
  can_manage_network: Generated<boolean>;
  can_manage_rights: Generated<boolean>;
  encryption_right: Generated<boolean>;
  full_admin_ro: Generated<boolean>;
  nsx_right: Generated<boolean>;
  receive_alerts: Generated<boolean>;
  password_hash: string | null;
  password_changed_at: NullableTimestamp;
  totp_secret_ciphertext: string | null;
  totp_enabled_at: NullableTimestamp;
  created_at: Generated<Date>;
  deleted_at: NullableTimestamp;
  expiration_date: NullableTimestamp;
}

export const ACCESS_RIGHTS = ['admin', 'disabled', 'readonly', 'readwrite'] as const;
export const NETWORK_ROLES = ['admin', 'manager', 'noAccess', 'readonly'] as const;
export const VM_NETWORK_ROLES = ['admin', 'noAccess', 'readonly'] as const;
export const OBJECT_RIGHT_TYPES = ['cluster', 'datastore', 'dvportgroup', 'folder', 'pool', 'vm'] as const;
export type AccessRight = (typeof ACCESS_RIGHTS)[number];
export type NetworkRole = (typeof NETWORK_ROLES)[number];
export type VmNetworkRole = (typeof VM_NETWORK_ROLES)[number];
export type ObjectRightType = (typeof OBJECT_RIGHT_TYPES)[number];

export interface UserRightTable {
  right_id: Generated<number>;
  user_id: number;
  datacenter_id: number;
  access_right: Generated<AccessRight>;
  can_add_ressource: Generated<boolean>;
  network_role: Generated<NetworkRole>;
  vm_network_role: Generated<VmNetworkRole>;
}

export interface UserObjectRightTable {
  object_right_id: Generated<number>;
  user_id: number;
  type: ObjectRightType;
  vmware_object_id: string;
  access_right: AccessRight;
  propagate: Generated<boolean>;
  created_at: Generated<Date>;
}

export interface PasswordHistoryTable {
  id: Generated<number>;
  service_name: string;
  user_id: number;
  password_hash: string;
  created_at: Generated<Date>;
}

export type SessionScope = 'full' | 'credentialsRenewal';
export interface UserSessionTable {
  session_id: Generated<number>;
  token_hash: Buffer;
  service_name: string;
  user_id: number;
  scope: SessionScope;
  ip: string | null;
  created_at: Generated<Date>;
  last_seen_at: Timestamp;
  expires_at: Timestamp;
  ended_at: NullableTimestamp;
  end_reason: string | null;
}

export interface TotpUsedTable {
  user_id: number;
  step: number;
  used_at: Generated<Date>;
}

export interface EnrollmentTable {
  enrollment_id: string;
  service_name: string;
  user_id: number;
  secret_ciphertext: string;
  created_at: Generated<Date>;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
}

export type OperationState = 'pending' | 'validated' | 'expired' | 'blocked' | 'canceled';
export interface OperationTable {
  operation_id: Generated<number>;
  service_name: string;
  task_id: number | null;
  kind: string;
  user_id: number | null;
  requested_by: string;
  token_hash: Buffer | null;
  token_expires_at: Timestamp;
  failed_attempts: Generated<number>;
  state: OperationState;
  validated_by_user_id: number | null;
  validated_at: NullableTimestamp;
  sends: Generated<number>;
  last_sent_at: NullableTimestamp;
  created_at: Generated<Date>;
  approval: Generated<'sms' | 'operator'>;
  /** Whom the token was addressed to (a requester validating his own change); null: the token validators. */
  token_to_user_id: number | null;
  /** The SMS's line: what is being validated (NULL for operations older than the column). */
  summary: string | null;
}

export interface OutboxTable {
  id: Generated<number>;
  service_name: string | null;
  channel: 'sms' | 'email';
  recipient: string;
  body_ciphertext: string | null;
  operation_id: number | null;
  state: Generated<'pending' | 'sending' | 'sent' | 'failed'>;
  attempts: Generated<number>;
  next_attempt_at: Timestamp;
  locked_by: string | null;
  locked_until: NullableTimestamp;
  sent_at: NullableTimestamp;
  last_error: string | null;
  created_at: Generated<Date>;
}

export interface AuthFailureTable {
  key: string;
  failures: number;
  last_failure_at: Timestamp;
  locked_until: NullableTimestamp;
  refused: Generated<number>;
}

export interface PasswordResetTable {
  token_hash: Buffer;
  service_name: string;
  user_id: number;
  created_at: Generated<Date>;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
  failed_attempts: Generated<number>;
}

export interface PasswordPolicyTable {
  service_name: string;
  min_length: Generated<number>;
  max_length: Generated<number>;
  digit_mandatory: Generated<boolean>;
  letter_mandatory: Generated<boolean>;
  lowercase_letter_mandatory: Generated<boolean>;
  uppercase_letter_mandatory: Generated<boolean>;
  special_mandatory: Generated<boolean>;
  denied_chars: ColumnType<string[], string | undefined, string>;
  history_check: Generated<number>;
  validity_period: Generated<number>;
}

export interface AllowedNetworkTable {
  network_access_id: Generated<number>;
  service_name: string;
  network: string;
  description: string | null;
  state: 'allowed' | 'toDelete' | 'toUpdate';
  created_at: Generated<Date>;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export type UserRow = Selectable<PccUserTable>;
export type UserRightRow = Selectable<UserRightTable>;
export type UserObjectRightRow = Selectable<UserObjectRightTable>;
export type AllowedNetworkRow = Selectable<AllowedNetworkTable>;
export type OperationRow = Selectable<OperationTable>;

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
  pcc_user: PccUserTable;
  user_right: UserRightTable;
  user_object_right: UserObjectRightTable;
  password_history: PasswordHistoryTable;
  user_session: UserSessionTable;
  totp_used: TotpUsedTable;
  enrollment: EnrollmentTable;
  operation: OperationTable;
  outbox: OutboxTable;
  auth_failure: AuthFailureTable;
  password_reset: PasswordResetTable;
  password_policy: PasswordPolicyTable;
  allowed_network: AllowedNetworkTable;
}

export type ServiceRow = Selectable<ServiceTable>;
export type WhitelistRow = Selectable<TwoFaWhitelistTable>;
export type TaskRow = Selectable<TaskTable>;
export type { Timestamp };
