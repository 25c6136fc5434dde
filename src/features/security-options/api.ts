/** OVH's security options (`dedicatedCloud.securityOption.SecurityOptionEnum`). */
export const SECURITY_OPTIONS = [
  'accessNetworkFiltered', 'advancedSecurity', 'base', 'contentLibrary', 'grsecKernel', 'hds', 'hids', 'hipaa',
  'logForwarder', 'nids', 'pcidss', 'privateCustomerVlan', 'privateGw', 'sendLogToCustomer', 'sessionTimeout', 'sftp',
  'snc', 'spla', 'sslV3', 'tls1.2', 'tokenValidation', 'twoFa', 'twoFaFail2ban', 'vrliForwarder', 'waf',
] as const; // prettier-ignore
export type SecurityOptionName = (typeof SECURITY_OPTIONS)[number];

export const SECURITY_OPTION_STATES = [
  'creating', 'deleted', 'deleting', 'delivered', 'disabled', 'pending', 'toCreate', 'updating',
] as const; // prettier-ignore
export type SecurityOptionState = (typeof SECURITY_OPTION_STATES)[number];

export const SECURITY_OPTION_ERRORS = [
  'ACTION_IMPOSSIBLE', 'ALREADY_DISABLED', 'ALREADY_ENABLED', 'BAD_ZONE', 'BREAKING_REQUIREMENTS', 'CONFLICTING_OPTIONS',
  'DEFINITIVE_OPTION', 'GENERIC_ERROR', 'HAS_UNSUPPORTED_DEPENDENCIES', 'MISSING_REQUIREMENTS_OPTIONS', 'NOT_ENABLED',
  'NOT_MANAGEABLE_DIRECTLY', 'SERVICE_SUSPENDED',
] as const; // prettier-ignore

export type SecurityOptionError = (typeof SECURITY_OPTION_ERRORS)[number];

/** The task that enables an option (`resumePendingEnabling`). */
export const ENABLE_SECURITY_OPTION = 'enableSecurityOption';
