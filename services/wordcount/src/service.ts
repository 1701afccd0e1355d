// wordcount: validated JSON in ({"text": ...}), counts out; text without any word is a permanent error.
import { z } from 'zod';
import { PermanentError, defineService } from '@warren/service-kit';
import { countText } from './count';

/** Longest text accepted, in UTF-16 code units (JavaScript string length). */
export const MAX_TEXT_LENGTH = 100_000;

export const wordcountInput = z.object({
  text: z.string().max(MAX_TEXT_LENGTH, `text must be at most ${MAX_TEXT_LENGTH} characters`),
  /** How many of the most frequent words to list. */
  top: z.number().int().min(1).max(100).default(10),
});

export type WordcountInput = z.infer<typeof wordcountInput>;

export default defineService({
  name: 'wordcount',
  version: '0.1.0',
  description: 'Counts words, lines and characters of a text and lists its most frequent words',
  schema: wordcountInput,
  // Counting is pure and deterministic: a failure will not go away on retry, so do not wait long.
  maxAttempts: 3,
  retryDelaysMs: [500, 2000],
  handlerTimeoutMs: 5000,
  handler: ({ text, top }) => {
    const stats = countText(text, top);
    // Retrying cannot make words appear: a permanent error (422 to a caller, DLQ for a plain message).
    if (stats.words === 0) {
      throw new PermanentError('text contains no words', 'EMPTY_TEXT', { status: 422 });
    }
    return stats;
  },
});
