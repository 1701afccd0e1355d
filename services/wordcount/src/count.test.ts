import { countText } from './count';

describe('countText', () => {
  it('counts words, lines and characters', () => {
    expect(countText('the cat\nsat on the mat\n')).toEqual({
      words: 6,
      lines: 2,
      characters: 23,
      topWords: [
        { word: 'the', count: 2 },
        { word: 'cat', count: 1 },
        { word: 'mat', count: 1 },
        { word: 'on', count: 1 },
        { word: 'sat', count: 1 },
      ],
    });
  });

  it('counts lines as a reader sees them, whatever the line break', () => {
    expect(countText('').lines).toBe(0);
    expect(countText('one').lines).toBe(1);
    expect(countText('one\n').lines).toBe(1);
    expect(countText('one\r\ntwo\rthree\nfour').lines).toBe(4);
    expect(countText('a\n\nb').lines).toBe(3);
  });

  it('folds case, keeps inner apostrophes and hyphens, ignores punctuation', () => {
    const stats = countText("Don't stop. DON'T! Well-known, well-known... e-mail -- 42");
    expect(stats.words).toBe(7);
    expect(stats.topWords).toEqual([
      { word: "don't", count: 2 },
      { word: 'well-known', count: 2 },
      { word: '42', count: 1 },
      { word: 'e-mail', count: 1 },
      { word: 'stop', count: 1 },
    ]);
  });

  it('handles non-Latin scripts and counts code points, not UTF-16 units', () => {
    const stats = countText('Grüße, мир! 😀 café');
    expect(stats.words).toBe(3);
    expect(stats.characters).toBe(18);
    expect(stats.topWords.map((w) => w.word)).toEqual(['café', 'grüße', 'мир']);
  });

  it('lists at most `top` words, most frequent first, ties in word order', () => {
    const text = 'b a c b a b ' + Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
    const { topWords } = countText(text, 10);
    expect(topWords).toHaveLength(10);
    expect(topWords.slice(0, 3)).toEqual([
      { word: 'b', count: 3 },
      { word: 'a', count: 2 },
      { word: 'c', count: 1 },
    ]);
    expect(countText(text, 2).topWords).toHaveLength(2);
  });

  it('finds no words in whitespace and punctuation', () => {
    expect(countText('  \n\t ... !!! --').words).toBe(0);
    expect(countText('  \n\t ... !!! --').topWords).toEqual([]);
  });
});
