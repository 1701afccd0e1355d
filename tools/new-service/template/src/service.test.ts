// template-service against the real broker (AMQP_URL, else localhost, else testcontainers).
import { eventually, startServiceForTest, type ServiceHarness } from '@warren/service-kit/testing';
import service from './service';

jest.setTimeout(20_000); // broker round trips

describe('template-service service', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await startServiceForTest(service); // under a unique queue name
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('replies to a call', async () => {
    const reply = await h.call({ text: 'héllo' });
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({
      service: 'template-service',
      text: 'héllo',
      length: 5,
      attempt: 1,
    });
  });

  it('answers invalid input with 400 application/problem+json, without retries', async () => {
    const reply = await h.call({ text: 42 });
    expect(reply.status).toBe(400);
    expect(reply.contentType).toBe('application/problem+json');
    expect(reply.json()).toMatchObject({
      status: 400,
      title: 'Validation failed',
      type: 'urn:warren:error:validation-failed',
    });
    expect((await h.outcomes()).retry ?? 0).toBe(0);
  });

  it('answers a permanent error with its status', async () => {
    const reply = await h.call({ text: '   ' });
    expect(reply.status).toBe(422);
    expect(reply.json()).toMatchObject({ title: 'Blank text', detail: 'text is blank' });
  });

  it('dead-letters an invalid plain message with the error in its headers', async () => {
    const messageId = await h.send('not json');
    const dead = await h.nextDeadLetter();
    expect(dead.properties.messageId).toBe(messageId);
    expect(dead.headers).toMatchObject({ 'x-error-code': 'VALIDATION_FAILED', 'x-attempt': 1 });
    await eventually(async () => ((await h.outcomes()).rejected ?? 0) >= 1);
  });
});
