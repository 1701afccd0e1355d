// template-service: The template-service consumer service
import { z } from 'zod';
import { PermanentError, defineService } from '@warren/service-kit';

/** The JSON body this service accepts. Invalid input is never retried: 400 to a caller, DLQ otherwise. */
export const templateServiceInput = z.object({
  text: z.string().min(1).max(10_000),
});

export type TemplateServiceInput = z.infer<typeof templateServiceInput>;

export default defineService({
  name: 'template-service', // = its queue name; also what the gateway routes POST /v1/template-service to
  version: '0.1.0',
  description: 'The template-service consumer service',
  schema: templateServiceInput,
  // Defaults, shown for tuning: 5 deliveries, then template-service.dlq; backoff through template-service.retry.<ms>.v2.
  maxAttempts: 5,
  retryDelaysMs: [1000, 4000, 16000, 60000],
  handlerTimeoutMs: 30_000,
  // Runs at least once per message: make it idempotent (see docs/writing-a-service.md).
  handler: ({ text }, ctx) => {
    if (text.trim() === '') {
      // Permanent: retrying cannot help. A caller gets 422, a plain message goes to the DLQ.
      throw new PermanentError('text is blank', 'BLANK_TEXT', { status: 422 });
    }
    // Any other thrown error is transient: retried with backoff, then dead-lettered.
    return { service: 'template-service', text, length: [...text].length, attempt: ctx.attempt };
  },
});
