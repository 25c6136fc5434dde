import type { Config } from '../config.js';
import { consoleSender, ovhSmsSender, webhookSender, type Sender } from './senders.js';

/**
 * The sender SMS_PROVIDER names. Unset, it is `log` on the embedded database (development) and an error with
 * DATABASE_URL, where tokens printed on a console would be a leak: production says where messages go.
 */
export function senderFor(config: Config): Sender {
  const provider = config.SMS_PROVIDER ?? (config.DATABASE_URL ? undefined : 'log');
  switch (provider) {
    case 'log':
      return consoleSender();
    case 'webhook':
      return webhookSender(config.SMS_WEBHOOK_URL!, config.SMS_WEBHOOK_SECRET!);
    case 'ovh':
      return ovhSmsSender({
        endpoint: config.OVH_SMS_ENDPOINT,
        applicationKey: config.OVH_SMS_APPLICATION_KEY!,
        applicationSecret: config.OVH_SMS_APPLICATION_SECRET!,
        consumerKey: config.OVH_SMS_CONSUMER_KEY!,
        smsServiceName: config.OVH_SMS_SERVICE_NAME!,
        sender: config.OVH_SMS_SENDER,
      });
    default:
      throw new Error('SMS_PROVIDER must be set with DATABASE_URL: log, webhook or ovh (see the README)');
  }
}
