export const WHITELIST_TASKS = {
  add: 'addTwoFAWhitelist',
  remove: 'removeTwoFAWhitelist',
  change: 'changePropertiesTwoFAWhitelist',
} as const;

/** The 2FA whitelist as the login sees it. */
export interface WhitelistApi {
  /** Whether the address is inside an `enabled` entry of the service: its logins skip the code (never the password). */
  bypasses(serviceName: string, ip: string): Promise<boolean>;
}
