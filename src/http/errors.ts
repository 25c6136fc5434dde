/**
 * The error catalogue. Services throw these; the error handler turns them into OVH's body
 * `{"class": "Client::…", "message": "…"}` with the matching status. Messages never carry secrets or internals.
 */
export type OvhErrorClass =
  | 'Client::BadRequest'
  | 'Client::Unauthorized'
  | 'Client::Forbidden'
  | 'Client::NotFound'
  | 'Client::Conflict'
  | 'Client::PayloadTooLarge'
  | 'Client::UnsupportedMediaType'
  | 'Client::TooManyRequests'
  | 'Server::ServiceUnavailable'
  | 'Server::InternalServerError';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly ovhClass: OvhErrorClass,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string) => new ApiError(400, 'Client::BadRequest', message);
export const notFound = (message: string) => new ApiError(404, 'Client::NotFound', message);

/** OVH answers exactly this for a service that does not exist and for one the caller does not own. */
export const serviceNotFound = () => notFound('This service does not exist');
/** `[field] reason`: the form OVH uses to name the parameter at fault. */
export const invalidField = (field: string, reason: string) => badRequest(`[${field}] ${reason}`);

export const whitelistNotFound = (id: number) => notFound(`The requested object (id = ${id}) does not exist`);
export const taskNotFound = (id: number) => notFound(`The requested object (taskId = ${id}) does not exist`);
