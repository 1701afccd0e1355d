// hello: the pika tutorial's consumer — queue `hello` declared as pika does, logs `Received <body>`.
import { defineService, rawReply } from '@warren/service-kit';

export default defineService({
  name: 'hello',
  version: '0.1.0',
  description: "The pika tutorial's hello consumer",
  // Exactly as `channel.queue_declare(queue='hello')`: non-durable, no arguments.
  queue: { kind: 'plain' },
  handler: (body, ctx) => {
    const text = body.toString('utf8');
    ctx.log.info(`Received ${text}`);
    return rawReply(`Hello, ${text}!`, 'text/plain; charset=utf-8');
  },
});
