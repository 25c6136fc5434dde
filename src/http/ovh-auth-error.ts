/** OVH's authentication errors: `{errorCode, httpCode, message}`, plus `class` as OVH's newer answers carry it. */
export type OvhAuthErrorCode =
  'INVALID_SIGNATURE' | 'INVALID_KEY' | 'INVALID_CREDENTIAL' | 'NOT_CREDENTIAL' | 'NOT_GRANTED_CALL' | 'QUERY_TIME_OUT';

const STATUS_TEXT: Record<number, string> = { 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden' };

export class OvhAuthError extends Error {
  constructor(
    readonly statusCode: 400 | 401 | 403,
    readonly errorCode: OvhAuthErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OvhAuthError';
  }

  toBody() {
    return {
      class: this.statusCode === 400 ? 'Client::BadRequest' : 'Client::Forbidden',
      errorCode: this.errorCode,
      httpCode: STATUS_TEXT[this.statusCode],
      message: this.message,
    };
  }
}

export const authErrors = {
  missing: () =>
    new OvhAuthError(
      403,
      'INVALID_KEY',
      'You must login first: sign the call (X-Ovh-Application, X-Ovh-Consumer, X-Ovh-Timestamp, X-Ovh-Signature) or send Authorization: Bearer <token>',
    ),
  invalidKey: () => new OvhAuthError(403, 'INVALID_KEY', 'Invalid application key'),
  notCredential: () => new OvhAuthError(403, 'NOT_CREDENTIAL', 'This credential does not exist'),
  invalidCredential: () => new OvhAuthError(403, 'INVALID_CREDENTIAL', 'This credential is not valid'),
  invalidSignature: () => new OvhAuthError(400, 'INVALID_SIGNATURE', 'Invalid signature'),
  queryTimeOut: () => new OvhAuthError(400, 'QUERY_TIME_OUT', 'Query out of time'),
  notGranted: () => new OvhAuthError(403, 'NOT_GRANTED_CALL', 'This call has not been granted'),
  invalidToken: () => new OvhAuthError(403, 'INVALID_CREDENTIAL', 'This token is not valid'),
};
