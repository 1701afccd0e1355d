// wordcount against the real broker: replies, 4xx problem replies without retries, rejected plain messages.
import { eventually, startServiceForTest, type ServiceHarness } from '@warren/service-kit/testing';
import wordcount, { MAX_TEXT_LENGTH } from './service';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

jest.setTimeout(20_000);

describe('wordcount service', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await startServiceForTest(wordcount);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('replies with the counts', async () => {
    const reply = await h.call({ text: 'To be, or not to be:\nthat is the question.' });
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe('application/json');
    expect(reply.json()).toEqual({
      words: 10,
      lines: 2,
      characters: 42,
      topWords: [
        { word: 'be', count: 2 },
        { word: 'to', count: 2 },
        { word: 'is', count: 1 },
        { word: 'not', count: 1 },
        { word: 'or', count: 1 },
        { word: 'question', count: 1 },
        { word: 'that', count: 1 },
        { word: 'the', count: 1 },
      ],
    });
  });

  it('answers invalid input with a 400 problem, without retrying it', async () => {
    const before = await h.outcomes();
    for (const body of [
      { text: 42 },
      { words: 'no text field' },
      'not json',
      { text: 'x'.repeat(MAX_TEXT_LENGTH + 1) },
    ]) {
      const reply = await h.call(body);
      expect(reply.status).toBe(400);
      expect(reply.contentType).toBe('application/problem+json');
      expect(reply.json<Problem>()).toMatchObject({
        status: 400,
        title: 'Validation failed',
        type: 'urn:warren:error:validation-failed',
      });
    }
    // Counted once acked, just after the reply went out.
    await eventually(
      async () => ((await h.outcomes()).rejected ?? 0) - (before.rejected ?? 0) >= 4,
    );
    const after = await h.outcomes();
    expect((after.rejected ?? 0) - (before.rejected ?? 0)).toBe(4);
    expect(after.retry ?? 0).toBe(0);
    // A failed call is answered, not queued: nothing in the retry queues or the DLQ.
    expect(await h.messageCount('.retry.500.v2')).toBe(0);
    expect(await h.messageCount('.dlq')).toBe(0);
  });

  it('answers a text without words with 422 EMPTY_TEXT', async () => {
    const before = (await h.outcomes()).rejected ?? 0;
    const reply = await h.call({ text: ' \n ... !!! ' });
    expect(reply.status).toBe(422);
    expect(reply.json<Problem>()).toMatchObject({
      status: 422,
      title: 'Empty text',
      type: 'urn:warren:error:empty-text',
      detail: 'text contains no words',
    });
    await eventually(async () => ((await h.outcomes()).rejected ?? 0) === before + 1);
  });

  it('dead-letters an invalid plain message at once, outcome rejected', async () => {
    const before = await h.outcomes();
    const messageId = await h.send({ text: ['not', 'a', 'string'] });
    const dead = await h.nextDeadLetter();
    expect(dead.properties.messageId).toBe(messageId);
    expect(JSON.parse(dead.body.toString())).toEqual({ text: ['not', 'a', 'string'] });
    expect(dead.headers).toMatchObject({
      'x-error-code': 'VALIDATION_FAILED',
      'x-original-queue': h.name,
      'x-attempt': 1,
    });
    expect(String(dead.headers['x-error-message'])).toMatch(/^invalid input: text: /);
    expect(Date.parse(String(dead.headers['x-failed-at']))).not.toBeNaN();
    // The outcome is counted once the DLQ copy is confirmed and the original acked.
    await eventually(async () => ((await h.outcomes()).rejected ?? 0) > (before.rejected ?? 0));
    expect(((await h.outcomes()).rejected ?? 0) - (before.rejected ?? 0)).toBe(1);
    expect((await h.outcomes()).retry ?? 0).toBe(0);
  });

  it('dead-letters a plain message without words with EMPTY_TEXT', async () => {
    await h.send({ text: '   ' });
    const dead = await h.nextDeadLetter();
    expect(dead.headers).toMatchObject({ 'x-error-code': 'EMPTY_TEXT', 'x-attempt': 1 });
  });
});
