export const ALLOWED_NETWORK_TASKS = {
  add: 'addAllowedNetwork',
  update: 'updateAllowedNetwork',
  remove: 'removeAllowedNetwork',
} as const;

/** The main access list, as the login sees it. */
export interface AllowedNetworksApi {
  /** Whether the address is inside a live allowed network of the service. */
  isAllowed(serviceName: string, ip: string): Promise<boolean>;
}
