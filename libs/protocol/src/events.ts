// Events on the broker: the topic exchange, the topic and subscription-pattern rules, and matching a topic to a pattern.

/** The durable topic exchange every event goes through; services bind their queues to it. */
export const EVENTS_EXCHANGE = 'warren.events';

/** Longest topic (an AMQP routing key may have 255 bytes; patterns and headers need room too). */
export const MAX_TOPIC_LENGTH = 200;

/** A topic: dot-separated words of lower-case letters, digits, "_" and "-" (`order.created`). */
export const TOPIC = /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$/;

/** A subscription pattern: a topic's words, where a word may be `*` (exactly one) or `#` (zero or more). */
export const TOPIC_PATTERN = /^([a-z0-9][a-z0-9_-]*|\*|#)(\.([a-z0-9][a-z0-9_-]*|\*|#))*$/;

export const TOPIC_RULE =
  'dot-separated words of lower-case letters, digits, "_" and "-" (e.g. order.created), at most ' +
  `${MAX_TOPIC_LENGTH} characters`;

export const TOPIC_PATTERN_RULE = `${TOPIC_RULE}; in a subscription a word may be * (one word) or # (any number of words)`;

/** Why `topic` cannot be published, or undefined when it can. */
export function topicProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'the topic is empty';
  if (topic.length > MAX_TOPIC_LENGTH) return `the topic is longer than ${MAX_TOPIC_LENGTH}`;
  if (!TOPIC.test(topic)) return `"${topic.slice(0, 60)}" is not a topic: ${TOPIC_RULE}`;
  return undefined;
}

/** Why `pattern` cannot be subscribed to, or undefined when it can. */
export function topicPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0 || pattern.length > MAX_TOPIC_LENGTH || !TOPIC_PATTERN.test(pattern))
    return `"${pattern.slice(0, 60)}" is not a subscription pattern: ${TOPIC_PATTERN_RULE}`;
  return undefined;
}

/** True when `topic` matches `pattern` as the broker's topic exchange matches a routing key to a binding. */
export function topicMatches(pattern: string, topic: string): boolean {
  return matchWords(pattern.split('.'), 0, topic.split('.'), 0);
}

function matchWords(p: string[], i: number, t: string[], j: number): boolean {
  if (i === p.length) return j === t.length;
  const word = p[i];
  if (word === '#') {
    // Zero or more words: try every split.
    for (let k = j; k <= t.length; k++) if (matchWords(p, i + 1, t, k)) return true;
    return false;
  }
  if (j === t.length) return false;
  return (word === '*' || word === t[j]) && matchWords(p, i + 1, t, j + 1);
}

/**
 * The topic of a delivered message, or undefined when it is not an event: the routing key when it
 * came through the events exchange (what the broker routed on, whatever the headers claim), else
 * its `x-event` header (set by Warren's publishers and kept on retry and dead-letter copies, whose
 * routing key is a queue's name). Only a valid topic counts.
 */
export function eventTopicOf(
  header: unknown,
  exchange: string,
  routingKey: string,
): string | undefined {
  const topic =
    exchange === EVENTS_EXCHANGE ? routingKey : typeof header === 'string' ? header : '';
  return topic !== '' && topicProblem(topic) === undefined ? topic : undefined;
}
