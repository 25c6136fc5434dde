export const WHITELIST_TASKS = {
  add: 'addTwoFAWhitelist',
  remove: 'removeTwoFAWhitelist',
  change: 'changePropertiesTwoFAWhitelist',
} as const;
