import { createHash, createHmac } from 'node:crypto';

export interface OutgoingMessage {
  channel: 'sms' | 'email';
  to: string;
  body: string;
  operationId: number | null;
}

/** Delivers one message or throws; the outbox retries. */
export interface Sender {
  readonly name: string;
  send(message: OutgoingMessage): Promise<void>;
}

const TIMEOUT_MS = 10_000;

/**
 * Development only: prints the message on the process's standard output, never through the logger (it holds a
 * token). Refused when DATABASE_URL is set unless asked for explicitly.
 */
export function consoleSender(write: (text: string) => void = (t) => process.stdout.write(t)): Sender {
  return {
    name: 'log',
    async send(message) {
      write(`[${message.channel.toUpperCase()} to ${message.to}] ${message.body}\n`);
    },
  };
}

/**
 * POSTs `{channel, to, message, operationId}` to SMS_WEBHOOK_URL. `X-Pcc-Signature: sha256=<hex>` is the HMAC-SHA256
 * of `<timestamp>.<body>` keyed by SMS_WEBHOOK_SECRET, with the timestamp in `X-Pcc-Timestamp`, so the receiver can
 * check origin and freshness.
 */
export function webhookSender(url: string, secret: string, now: () => Date = () => new Date()): Sender {
  return {
    name: 'webhook',
    async send(message) {
      const body = JSON.stringify({
        channel: message.channel,
        to: message.to,
        message: message.body,
        operationId: message.operationId,
      });
      const timestamp = String(Math.floor(now().getTime() / 1000));
      const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-pcc-timestamp': timestamp, 'x-pcc-signature': `sha256=${signature}` },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`webhook answered ${response.status}`);
    },
  };
}

export interface OvhSmsSettings {
  /** e.g. https://eu.api.ovh.com/1.0 */
  endpoint: string;
  applicationKey: string;
  applicationSecret: string;
  consumerKey: string;
  /** The SMS account, e.g. sms-ab12345-1 */
  smsServiceName: string;
  sender?: string | undefined;
}

/** OVH's SMS API: `POST /sms/{serviceName}/jobs`, signed like any OVH call. E-mails are not its business. */
export function ovhSmsSender(settings: OvhSmsSettings, now: () => Date = () => new Date()): Sender {
  return {
    name: 'ovh',
    async send(message) {
      if (message.channel !== 'sms') throw new Error('the ovh provider sends SMS only');
      const url = `${settings.endpoint.replace(/\/$/, '')}/sms/${encodeURIComponent(settings.smsServiceName)}/jobs`;
      const body = JSON.stringify({
        message: message.body,
        receivers: [message.to.replace('.', '')],
        charset: 'UTF-8',
        coding: '7bit',
        priority: 'high',
        noStopClause: true,
        ...(settings.sender ? { sender: settings.sender } : { senderForResponse: true }),
      });
      const timestamp = String(Math.floor(now().getTime() / 1000));
      const signature = `$1$${createHash('sha1')
        .update([settings.applicationSecret, settings.consumerKey, 'POST', url, body, timestamp].join('+'))
        .digest('hex')}`;
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-ovh-application': settings.applicationKey,
          'x-ovh-consumer': settings.consumerKey,
          'x-ovh-timestamp': timestamp,
          'x-ovh-signature': signature,
        },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`OVH SMS API answered ${response.status}`);
    },
  };
}
