// The services the routes use, built once from the configuration and decorated on the app: the FHIR gateway
// (app.fhir), the care plan use cases (app.carePlans), the quality measures (app.measures, app.measureJobs) and
// webhook subscriptions (app.subscriptions, with the delivery worker that runs beside the API).
import type { FastifyInstance } from 'fastify';
import { CarePlans } from '../care-plans/care-plans.js';
import type { AppConfig } from '../config.js';
import { FhirGateway } from '../fhir/client/gateway.js';
import { SmartBackendAuth } from '../fhir/client/smart-backend-auth.js';
import { MeasureService } from '../measures/measure-service.js';
import { ReportJobs } from '../measures/report-jobs.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import type { ErrorDetail } from '../model/errors.js';
import { DeliveryWorker } from '../subscriptions/delivery-worker.js';
import { SubscriptionService } from '../subscriptions/subscription-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig;
    carePlans: CarePlans;
    fhir: FhirGateway;
    measures: MeasureService;
    measureJobs: ReportJobs;
    subscriptions: SubscriptionService;
    deliveryWorker: DeliveryWorker;
  }
}

export function decorateServices(
  app: FastifyInstance,
  config: AppConfig,
  checkSchema: (plan: SharedCarePlan) => ErrorDetail[],
): void {
  app.decorate('config', config);
  const smart =
    config.fhirAuth === 'smart-backend' && config.fhirSmart
      ? new SmartBackendAuth({ ...config.fhirSmart, timeoutMs: config.fhirTimeoutMs })
      : undefined;
  const bearer = config.fhirAuth === 'bearer' ? config.fhirBearerToken : undefined;
  const gateway = new FhirGateway({
    baseUrl: config.fhirBaseUrl,
    timeoutMs: config.fhirTimeoutMs,
    maxRetries: config.fhirMaxRetries,
    authorization: smart ? () => smart.authorization() : bearer ? async () => `Bearer ${bearer}` : undefined,
    onUnauthorized: smart ? (authorization) => smart.invalidate(authorization) : undefined,
  });
  app.decorate('fhir', gateway);
  const carePlans = new CarePlans(gateway, {
    settleMs: config.changeFeedSettleMs,
    checkSchema,
    usCoreVersion: config.usCoreVersion,
  });
  app.decorate('carePlans', carePlans);
  app.decorate('measures', new MeasureService(gateway));
  app.decorate('measureJobs', new ReportJobs());

  // Webhook deliveries run beside the API, never inside a request: started when the app is ready, stopped on close.
  const worker = new DeliveryWorker(gateway, {
    config: config.webhooks,
    settleMs: config.changeFeedSettleMs,
    logger: app.log,
  });
  app.decorate('deliveryWorker', worker);
  app.decorate(
    'subscriptions',
    new SubscriptionService(gateway, config.webhooks, worker, config.changeFeedSettleMs),
  );
  app.addHook('onReady', async () => worker.start());
  app.addHook('onClose', async () => worker.stop());
}
