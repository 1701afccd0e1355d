// echo: replies with exactly the bytes and content type it received (durable queue; benchmarks use it); also takes events echo.#.
import { defineService, rawReply } from '@warren/service-kit';

export default defineService({
  name: 'echo',
  version: '0.1.0',
  description: 'Replies with the body it received',
  prefetch: 100,
  // A subscriber out of the box: POST /v1/events/echo.hello reaches it (one-way: nothing to reply).
  events: ['echo.#'],
  handler: (body, ctx) =>
    rawReply(body, String(ctx.properties.contentType ?? 'application/octet-stream')),
});
