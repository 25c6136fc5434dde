import { smsProviderOf, type Config } from '../config.js';
import { consoleSender, ovhSmsSender, webhookSender, type Sender } from './senders.js';

/**
 * The sender SMS_PROVIDER names. Unset, it is `log` on a developer's embedded database; with DATABASE_URL or
 * NODE_ENV=production the configuration must say where messages go (loadConfig refuses it otherwise).
 */
export function senderFor(config: Config): Sender {
  const provider = smsProviderOf(config);
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
      throw new Error(
        'Invalid configuration:\n  SMS_PROVIDER must be set with DATABASE_URL or NODE_ENV=production: webhook or ovh (log for development)',
      );
  }
}
