// Pure text statistics: words, lines, characters and the most frequent words.

export interface WordCount {
  word: string;
  count: number;
}

export interface TextStats {
  /** Word tokens: runs of letters/digits, with inner apostrophes or hyphens ("don't", "e-mail"). */
  words: number;
  /** Lines as a reader sees them: "a\nb" and "a\nb\n" are both 2; "" is 0. */
  lines: number;
  /** Unicode code points (an emoji counts 1, not 2 UTF-16 units). */
  characters: number;
  /** Most frequent words, case-folded, by count descending then word ascending. */
  topWords: WordCount[];
}

const WORD = /[\p{L}\p{N}\p{M}]+(?:['’-][\p{L}\p{N}\p{M}]+)*/gu;
const LINE_BREAK = /\r\n|\r|\n/;

export function countText(text: string, top = 10): TextStats {
  const frequencies = new Map<string, number>();
  let words = 0;
  for (const match of text.matchAll(WORD)) {
    words++;
    const word = match[0].toLowerCase().replace(/’/g, "'");
    frequencies.set(word, (frequencies.get(word) ?? 0) + 1);
  }
  const topWords = [...frequencies]
    .map(([word, count]) => ({ word, count }))
    .sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : a.word > b.word ? 1 : 0))
    .slice(0, top);
  return { words, lines: countLines(text), characters: countCodePoints(text), topWords };
}

function countLines(text: string): number {
  if (text === '') return 0;
  const parts = text.split(LINE_BREAK);
  // A final line break ends the last line; it does not start a new, empty one.
  return parts[parts.length - 1] === '' ? parts.length - 1 : parts.length;
}

function countCodePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
