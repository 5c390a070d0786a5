/**
 * alerts: rules over events, metrics and the host, evaluated continuously; webhook notifications
 * with retries on firing and resolved transitions.
 */
export { AlertEvaluator, type HttpTotals, type Notification } from './alert-evaluator.ts';
export { WebhookNotifier } from './webhook-notifier.ts';
