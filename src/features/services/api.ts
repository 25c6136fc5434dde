import type { ServiceRow } from '../../db/types.js';

/** Services as other features see them. */
export interface ServicesApi {
  /** The service if the account owns it (`null`: an operator, who sees all); 404 as for one that does not exist. */
  require(serviceName: string, accountId: number | null): Promise<ServiceRow>;
  /** The service, whoever owns it; 404 when there is none. */
  find(serviceName: string): Promise<ServiceRow>;
}
